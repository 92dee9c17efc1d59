"""Protocol recognition: signatures, probes and entropy."""
