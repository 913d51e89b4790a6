"""Video quality diagnosis: detectors (pure, on decoded pictures), sampling, the patrol."""
