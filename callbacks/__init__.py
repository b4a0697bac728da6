"""Lightning callbacks shared by both trainers."""
