-- Separate databases on one PostgreSQL server: Airflow's metadata and tsad's records.
-- Run once by init-databases.sh when the data volume is new, as the superuser the postgres image
-- creates (POSTGRES_USER), connected to Airflow's database (POSTGRES_DB). psql variables:
--   airflow_db   Airflow's metadata database (already created by the image, owned by POSTGRES_USER)
--   tsad_db, tsad_user, tsad_password   tsad's records database and the role that owns it
-- Neither role can connect to the other's database.
\set ON_ERROR_STOP on

CREATE ROLE :"tsad_user" LOGIN PASSWORD :'tsad_password';
CREATE DATABASE :"tsad_db" OWNER :"tsad_user" ENCODING 'UTF8';
REVOKE ALL ON DATABASE :"tsad_db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"airflow_db" FROM PUBLIC;

\connect :"tsad_db"
-- PostgreSQL 15+ no longer lets every role create objects in public; make tsad's role its owner.
ALTER SCHEMA public OWNER TO :"tsad_user";
