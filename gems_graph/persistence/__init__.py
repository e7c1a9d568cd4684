"""What outlives a process: the GEMS home, run folders and images, checkpoints, run reports."""
