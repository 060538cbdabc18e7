"""Clients for the Triton sites, the embedded local mode and the serving benchmark.

A plain library: it never imports Pulumi (the control plane lives in infra/ and components/).
"""
