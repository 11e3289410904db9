"""train_2d / train_3d: model inputs from stage outputs, augmentation, the training loop, MLflow."""
