"""report: figures, Grad-CAM sheets and the one-page report, from metrics files."""
