"""The container check (`make container-check`, tools/container_check.py): the images built
and the chart's rendered pods started as containers, as a cluster would run them.

engine: podman (or docker) and the settings it runs with; base: the local Debian base image;
pipconf: the host's pip configuration for the build; build: the images; render: the chart's
objects; envvars and podspec: a rendered pod as podman arguments; pods: starting them;
probes, clients, drain: what is checked against them; audio: the speech sent.
"""
