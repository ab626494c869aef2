"""The engine version berth reports: `docker version`'s Server and a swarm node's
Description.Engine.EngineVersion (`docker node ls`)."""

ENGINE_VERSION = "28.5.2-berth"
