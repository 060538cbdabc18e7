"""The blueprint's shared vocabulary: plain data and pure functions, importing nothing of the repo.

The stack program, its components, the model build, the local mode and the policy pack all
read the facts here, so that each one is written once.
"""
