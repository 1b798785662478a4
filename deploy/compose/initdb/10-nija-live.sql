-- Run once, by the postgres image, when its volume is first initialised (POSTGRES_DB made
-- nija_paper). Each NIJA mode keeps its store in a database of its own.
CREATE DATABASE nija_live OWNER nija;
