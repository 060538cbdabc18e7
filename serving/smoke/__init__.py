"""The smoke check a user runs after `pulumi up` (or `make up-local`): both sites answer,
agree with each other, and serve exactly the models placed on them.

`checks` runs the checks on a list of `SiteTarget`s; `targets` builds that list from a
stack's outputs or from the local mode's state, so the tests run the very code a user runs
against the clouds, with the local mode standing in for them.
"""
