-- The State Grid warehouse of DESIGN.md §1 as add_view calls: ODS -> DWD -> DWS, the intent of
-- the original Flink jobs. The view SQL lives in stategrid_ivm.stategrid_warehouse_views():
--   SELECT view_name, query FROM stategrid_ivm.stategrid_warehouse_views() ORDER BY ord;
-- shows it to copy and change. Expects a pipeline :'pipeline' with power_user and
-- power_consumption as sources (their mirrors ods_power_user, ods_power_consumption).
SELECT stategrid_ivm.add_view(:'pipeline', view_name, query)
FROM stategrid_ivm.stategrid_warehouse_views()
ORDER BY ord;
