-- The State Grid source tables (the OLTP side of the warehouse; DESIGN.md §1).
-- The user owns these tables; stategrid_ivm only reads their changes from the WAL.
-- Safe to re-run: tables and indexes are created only when missing.

CREATE TABLE IF NOT EXISTS power_user (
    user_id      bigint PRIMARY KEY,
    user_name    varchar(100),
    usage_type   varchar(50),             -- 居民 (residential) / 商业 (commercial) / 工业 (industrial)
    region_id    int,
    region_name  varchar(100),
    address      varchar(200),
    phone        varchar(20),
    create_time  timestamp DEFAULT now(),
    update_time  timestamp DEFAULT now()
);

CREATE TABLE IF NOT EXISTS power_consumption (
    consumption_id       bigserial PRIMARY KEY,
    user_id              bigint REFERENCES power_user (user_id),
    consumption_amount   decimal(10,2),   -- kWh
    consumption_cost     decimal(10,2),   -- yuan
    consumption_date     timestamp,
    meter_reading_before decimal(10,2),
    meter_reading_after  decimal(10,2),
    remark               varchar(200)
);

CREATE INDEX IF NOT EXISTS power_consumption_user_id_idx ON power_consumption (user_id);
CREATE INDEX IF NOT EXISTS power_consumption_date_idx ON power_consumption (consumption_date);
