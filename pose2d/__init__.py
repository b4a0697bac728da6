"""Top-down 2D pose detection: HRNet with channel attention (CAM)."""
