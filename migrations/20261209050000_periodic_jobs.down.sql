DROP TABLE devx.periodic_jobs;
