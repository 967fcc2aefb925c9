-- A handful of State Grid rows for the demo (scripts/demo.sh), written as the OLTP side would
-- write them: a few transactions of inserts, one correction (UPDATE) and one removal (DELETE).
--
-- Regions are the provincial-level division codes and names of stategrid_ivm.sample_regions()
-- (the generator's), tariffs those of stategrid_ivm.sample_tariffs(), in yuan per kWh:
-- 居民 (residential) 0.56, 商业 (commercial) 0.85, 工业 (industrial) 0.65.
-- Every reading keeps consumption_cost = round(consumption_amount * tariff, 2) and
-- meter_reading_after - meter_reading_before = consumption_amount.
-- Expects empty tables (the demo empties them first, RESTART IDENTITY): consumption ids start
-- at 1. Add generated users and readings afterwards with stategrid_ivm.generate_sample_data().

-- Transaction 1: five users in five provinces.
BEGIN;
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone,
                        create_time, update_time) VALUES
    (10001, '张伟', '居民', 11, '北京', '北京市朝阳区建国路88号',         '13800138001', '2024-02-20 09:00:00', '2024-02-20 09:00:00'),
    (10002, '李娜', '商业', 31, '上海', '上海市浦东新区陆家嘴环路1000号', '13900139002', '2024-02-20 09:10:00', '2024-02-20 09:10:00'),
    (10003, '王强', '工业', 44, '广东', '深圳市宝安区福永街道工业园5栋',   '13700137003', '2024-02-20 09:20:00', '2024-02-20 09:20:00'),
    (10004, '刘洋', '居民', 51, '四川', '成都市武侯区天府大道北段1700号', '13600136004', '2024-02-20 09:30:00', '2024-02-20 09:30:00'),
    (10005, '陈静', '商业', 33, '浙江', '杭州市西湖区文三路259号',        '13500135005', '2024-02-20 09:40:00', '2024-02-20 09:40:00');
COMMIT;

-- Transaction 2: the meter readings of 1 March, one per user (consumption_id 1..5).
BEGIN;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark) VALUES
    (10001,   12.50,    7.00, '2024-03-01 08:00:00',   3520.00,   3532.50, '自动抄表'),
    (10002,  186.40,  158.44, '2024-03-01 08:05:00',  15230.00,  15416.40, '自动抄表'),
    (10003, 4520.00, 2938.00, '2024-03-01 08:10:00', 880000.00, 884520.00, '自动抄表'),
    (10004,    9.80,    5.49, '2024-03-01 08:15:00',   2210.00,   2219.80, NULL),
    (10005,  230.60,  196.01, '2024-03-01 08:20:00',  42100.00,  42330.60, '自动抄表');
COMMIT;

-- Transaction 3: readings of 2 March (consumption_id 6..10); the collector uploads one twice.
BEGIN;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark) VALUES
    (10001,   14.20,    7.95, '2024-03-02 08:00:00',   3532.50,   3546.70, '自动抄表'),
    (10002,  175.00,  148.75, '2024-03-02 08:05:00',  15416.40,  15591.40, '自动抄表'),
    (10003, 4875.50, 3169.08, '2024-03-02 08:10:00', 884520.00, 889395.50, '自动抄表'),
    (10005,  215.30,  183.01, '2024-03-02 08:20:00',  42330.60,  42545.90, '自动抄表'),
    (10005,  215.30,  183.01, '2024-03-02 08:20:00',  42330.60,  42545.90, '重复上传');
COMMIT;

-- Transaction 4: a correction. 张伟's meter was misread on 2 March (after = 3547.10).
UPDATE power_consumption
SET meter_reading_after = 3547.10, consumption_amount = 14.60, consumption_cost = 8.18,
    remark = '人工复核更正'
WHERE consumption_id = 6;

-- Transaction 5: the duplicate upload is removed.
DELETE FROM power_consumption WHERE consumption_id = 10;
