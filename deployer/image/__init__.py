"""The container image: wheelhouse on the host, Dockerfile from templates/, docker build,
registry push and the conformance check. Imports the docker SDK only when called."""
