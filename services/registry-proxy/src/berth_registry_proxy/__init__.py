"""berth's pull-through registry proxy: the pull side of the OCI Distribution API, cached."""
