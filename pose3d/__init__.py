"""2D→3D lifting: spatial-temporal transformer with SAM/TAM."""
