"""The `fer3d` command: predict, gradcam, viewer, remote."""
