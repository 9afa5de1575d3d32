-- What SQLAlchemy's README.unittests.rst asks of a PostgreSQL test database. The
-- extensions are made by the matrix's setup step, once the server is up.
CREATE ROLE scott LOGIN SUPERUSER PASSWORD 'tiger';
CREATE DATABASE test OWNER scott ENCODING 'utf8' TEMPLATE template0;
ALTER DATABASE test SET default_text_search_config = 'pg_catalog.english';
\connect test
SET ROLE scott;
CREATE SCHEMA test_schema;
CREATE SCHEMA test_schema_2;
