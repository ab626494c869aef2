"""berth's image builder: dockerd's classic builder (`docker build` without BuildKit)."""
