"""The managers' view: the department forecast and its self-contained report."""
