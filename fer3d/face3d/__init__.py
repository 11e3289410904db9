"""landmarks, meshes, voxelize: 3D faces from MediaPipe FaceMesh and what is built from them."""
