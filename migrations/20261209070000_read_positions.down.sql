DROP TABLE devx.read_positions;
