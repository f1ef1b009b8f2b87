"""pytest collects the ``>>>`` examples of every page; the build scripts are not tests."""

collect_ignore = ["conf.py"]
collect_ignore_glob = ["figures/*", "_build/*", "_generated_figures/*", "generated/*"]
