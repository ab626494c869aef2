"""containerd's role in berth: content store, image metadata, overlay snapshots, load/import."""
