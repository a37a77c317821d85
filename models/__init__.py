"""What a model is: the YAML specs, the bundle format and prediction, compiled boosters, the MLflow registry
helpers and the pyfunc. Ships with every logged model and Bento, so it imports only features/."""
