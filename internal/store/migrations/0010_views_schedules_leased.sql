-- Running schedules by lease end: the scheduler's next-wake and rescue
-- queries find expired leases without walking every open schedule.
CREATE INDEX schedules_leased ON schedules (locked_until) WHERE state = 'running';
