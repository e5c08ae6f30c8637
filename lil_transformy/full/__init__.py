"""The full scale, its own path: all of TinyStories, d_model 128, context 256, on a GPU or a Mac (`--preset full`).
Nothing of the course's checks, grading or CPU budget depends on it."""
