"""Sampling from the stage LMs and the pipeline prompt wav -> semantic -> coarse -> fine -> wav."""
