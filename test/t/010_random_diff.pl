# Randomized differential test of the view engine (issue 4, deliverable 7; DESIGN.md §7).
#
# The four State Grid tables of examples/stategrid/warehouse.sql, maintained by a pipeline over
# power_user and power_consumption, while one session runs a seeded random workload on the
# sources: inserts; updates of amounts, costs, dates (readings move between days), user ids,
# regions, names, usage types and phones; NULLs in every nullable column; primary-key updates
# on both tables; deletes (users who have readings, too); readings of unknown users (the
# foreign key is dropped); multi-row statements, transactions of random size, savepoints,
# rollbacks, a rare TRUNCATE; duplicated readings, deletes of a day's largest or smallest
# reading, amounts drawn from a few values (ties of extremes); random pauses and resumes of the
# pipeline, and SIGKILLs of the worker while it applies. Periodically and at the end: sync(), then
# verify() must report every table ok. At the end the four tables are also compared with the
# definitions of DESIGN.md §1 computed over the sources directly.
#
# Aggregate views are kept twice, one planned with stategrid_ivm.view_strategy = 'recompute'
# (suffix _r) and one with 'auto' (_a: delta rules over kept state), over the mirror (NULL group
# keys), over the DWD detail (group moves when users change region) and over a DWS table (a view
# over a view over a view), with WHERE, HAVING, count(DISTINCT) and min/max: each pair must
# also agree row for row at every check (issue 15, item 4). Among them aggregates without GROUP BY
# (one row, also when the TRUNCATE empties the input) and DISTINCT views (issue 16).
#
# General join views (issue 16) are drawn from the seed too: the join type of each (inner, LEFT,
# RIGHT, FULL), join columns that are keys or not (users by region, name or usage type; readings
# of the same user), self-joins, extra ON conditions, projections with and without the keys,
# three of six EXISTS / NOT EXISTS / IN / NOT IN shapes (NULLs in the subquery's column and in
# the outer one, an uncorrelated one, one over a view), a join of an aggregate view with a
# projection view, a join over a join view, an outer join over an inner join with a join view
# whose key has NULLs, and aggregate pairs over two join views. verify() checks each.
#
# Reproducible: the workload depends on the seed only (printed; SGIVM_TAP_SEED repeats it) and
# is written to the test's log directory. SGIVM_RANDOM_OPS sets its size (default 3000);
# SGIVM_RANDOM_EXTRA_VIEWS=1 adds views over the other supported constructs.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use Time::HiRes qw(time usleep);

my $seed = $ENV{SGIVM_TAP_SEED} // int(time() * 1000) % 1000000;
srand($seed);
diag "random seed $seed (set SGIVM_TAP_SEED=$seed to repeat)";
my $t0 = time();
my $ops_target = $ENV{SGIVM_RANDOM_OPS} // 3000;
my $check_every = 500;    # operations between two checks

my $warehouse_sql = source_file('examples/stategrid/warehouse.sql');
my $schema_sql    = source_file('examples/stategrid/schema.sql');

# The batch size varies with the seed: one source transaction per apply transaction, or many.
my @batch_sizes = (1, 4, 50, 10000);
my $batch_size = $batch_sizes[ int(rand(@batch_sizes)) ];
note "stategrid_ivm.batch_size = $batch_size, $ops_target operations";

my $node = stategrid_node('random_diff', conf => qq{
log_min_messages = warning
log_statement = none
stategrid_ivm.batch_size = $batch_size
restart_after_crash = on
});

# ---- the deterministic workload ----------------------------------------------------------------

# A set of ids with O(1) add, remove and random pick, in an order that depends on the
# operations only (never on Perl's hash order).
package IdSet {
	sub new { return bless { list => [], pos => {} }, shift }
	sub add
	{
		my ($s, $id) = @_;
		return if exists $s->{pos}{$id};
		$s->{pos}{$id} = scalar @{ $s->{list} };
		push @{ $s->{list} }, $id;
	}
	sub remove
	{
		my ($s, $id) = @_;
		my $p = delete $s->{pos}{$id};
		return unless defined $p;
		my $last = pop @{ $s->{list} };
		if ($p < @{ $s->{list} }) { $s->{list}[$p] = $last; $s->{pos}{$last} = $p; }
	}
	sub has   { return exists $_[0]{pos}{ $_[1] } }
	sub size  { return scalar @{ $_[0]{list} } }
	sub pick  { my $s = shift; return @{ $s->{list} } ? $s->{list}[ int(rand(@{ $s->{list} })) ] : undef }
	sub clear { my $s = shift; $s->{list} = []; $s->{pos} = {} }
	sub ids   { return @{ $_[0]{list} } }
}

my $users    = IdSet->new;    # user ids present in power_user
my $gone     = IdSet->new;    # user ids deleted (or rekeyed away), candidates to come back
my $readings = IdSet->new;    # consumption ids present in power_consumption
my $next_user    = 1000;
my $next_reading = 100000;
my @undo;                     # model changes of the open transaction, for ROLLBACK

sub model
{
	my ($op, $set, $id) = @_;
	if ($op eq 'add') { return if $set->has($id); $set->add($id); }
	else { return unless $set->has($id); $set->remove($id); }
	push @undo, [ $op, $set, $id ];
}

sub undo_to
{
	my ($mark) = @_;
	while (@undo > $mark)
	{
		my ($op, $set, $id) = @{ pop @undo };
		if ($op eq 'add') { $set->remove($id) } else { $set->add($id) }
	}
}

sub chance { return rand() < $_[0] }
sub one_of { return $_[ int(rand(@_)) ] }
sub maybe_null { my ($p, $v) = @_; return chance($p) ? 'NULL' : $v }
sub lit { my $s = shift; $s =~ s/'/''/g; return "'$s'" }

my @names  = ('张三', '李四', '王五', '赵六', '钱七', '孙八', '周九', '吴十', 'Alice', 'Bob');
my @usages = ('居民', '商业', '工业');
my %region_names = (1 => '北京', 2 => '上海', 3 => '广州', 4 => '深圳', 5 => '成都', 6 => '西安');

# (a third of the amounts from a few values: ties, also of a group's extreme)
sub amount { return rand() < 0.05 ? '0.00' : rand() < 0.3 ? one_of('10.00', '50.00', '250.00', '499.99') : sprintf('%.2f', rand(500)) }

# a reading's time: one of 8 days, sometimes right at a day boundary
sub reading_time
{
	my $day = 1 + int(rand(8));
	my $t = one_of(sprintf('%02d:%02d:%02d', int(rand(24)), int(rand(60)), int(rand(60))),
		'00:00:00', '23:59:59.999999', '12:00:00');
	return lit(sprintf('2024-07-%02d %s', $day, $t));
}

sub region_values
{
	my $r = 1 + int(rand(6));
	# the name usually follows the id; sometimes it is missing or different
	my $name = chance(0.85) ? lit($region_names{$r}) : one_of('NULL', lit('新区' . $r));
	return (maybe_null(0.05, $r), $name);
}

sub phone
{
	return one_of('NULL', lit('1' . join('', map { int(rand(10)) } 1 .. 10)), lit(int(rand(1000))), lit(''),
		lit('138' . sprintf('%08d', int(rand(1e8)))));
}

# a user id for a reading: mostly a present user, sometimes a gone one, an unknown one or NULL
sub reading_user
{
	my $r = rand();
	return $users->pick // 'NULL' if $r < 0.75;
	return $gone->pick // 999999 if $r < 0.87;
	return 900000 + int(rand(20)) if $r < 0.95;
	return 'NULL';
}

sub insert_user
{
	my ($id) = @_;
	model('add', $users, $id);
	model('remove', $gone, $id);
	my ($r, $rn) = region_values();
	return sprintf(
		'INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone, create_time, update_time)'
		  . ' VALUES (%d, %s, %s, %s, %s, %s, %s, %s, %s);',
		$id, maybe_null(0.1, lit(one_of(@names))), maybe_null(0.1, lit(one_of(@usages))), $r, $rn,
		maybe_null(0.2, lit('地址' . int(rand(100)))), phone(),
		maybe_null(0.1, lit('2024-06-01 08:00')), maybe_null(0.1, lit('2024-06-02 09:00')));
}

sub insert_reading
{
	my $id = $next_reading++;
	model('add', $readings, $id);
	return sprintf(
		'INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost,'
		  . ' consumption_date, meter_reading_before, meter_reading_after, remark)'
		  . ' VALUES (%d, %s, %s, %s, %s, %s, %s, %s);',
		$id, reading_user(), maybe_null(0.05, amount()), maybe_null(0.08, amount()),
		maybe_null(0.04, reading_time()), maybe_null(0.2, amount()), maybe_null(0.2, amount()),
		maybe_null(0.5, lit('备注' . int(rand(10)))));
}

# one random statement on the sources; returns its SQL
sub random_op
{
	my $r = rand();
	my $c = $readings->pick;
	my $u = $users->pick;
	if ($r < 0.26 || !defined $c) { return insert_reading() }
	if ($r < 0.36)
	{
		return sprintf('UPDATE power_consumption SET consumption_amount = %s, consumption_cost = %s WHERE consumption_id = %d;',
			maybe_null(0.05, amount()), maybe_null(0.05, amount()), $c);
	}
	if ($r < 0.43)
	{
		# late or corrected readings: another day, or a NULL date
		return sprintf('UPDATE power_consumption SET consumption_date = %s WHERE consumption_id = %d;',
			maybe_null(0.08, reading_time()), $c);
	}
	if ($r < 0.47)
	{
		return sprintf('UPDATE power_consumption SET user_id = %s WHERE consumption_id = %d;', reading_user(), $c);
	}
	if ($r < 0.49)
	{
		my $col = one_of('consumption_amount', 'consumption_cost', 'consumption_date', 'user_id', 'remark',
			'meter_reading_before', 'meter_reading_after');
		return "UPDATE power_consumption SET $col = NULL WHERE consumption_id = $c;";
	}
	if ($r < 0.51)
	{
		my $new = $next_reading++;
		model('remove', $readings, $c);
		model('add', $readings, $new);
		return "UPDATE power_consumption SET consumption_id = $new WHERE consumption_id = $c;";
	}
	if ($r < 0.58)
	{
		model('remove', $readings, $c);
		return "DELETE FROM power_consumption WHERE consumption_id = $c;";
	}
	if ($r < 0.60 && defined $u)
	{
		return sprintf('UPDATE power_consumption SET consumption_amount = consumption_amount + %s WHERE user_id = %d;',
			amount(), $u);
	}
	if ($r < 0.61 && defined $u)
	{
		# the model does not follow multi-row deletes: later picks of these ids find nothing
		return sprintf("DELETE FROM power_consumption WHERE user_id = %d AND consumption_date::date = '2024-07-%02d';",
			$u, 1 + int(rand(8)));
	}
	if ($r < 0.62)
	{
		my @ids = map { $next_reading++ } 1 .. (2 + int(rand(30)));
		model('add', $readings, $_) for @ids;
		my $user = reading_user();
		return sprintf(
			'INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)'
			  . " SELECT i, %s, (i %% 97) + 0.25, (i %% 13) + 0.5, timestamp '2024-07-01' + (i %% 8) * interval '1 day'"
			  . ' + (i %% 1440) * interval \'1 minute\' FROM generate_series(%d, %d) i;',
			$user, $ids[0], $ids[-1]);
	}
	if ($r < 0.68 || !defined $u) { return insert_user($next_user++) }
	if ($r < 0.70)
	{
		my $back = $gone->pick;
		return insert_user($back) if defined $back;
		return insert_user($next_user++);
	}
	if ($r < 0.79)
	{
		my ($reg, $rn) = region_values();
		return "UPDATE power_user SET region_id = $reg, region_name = $rn, update_time = '2024-07-09 10:00' WHERE user_id = $u;";
	}
	if ($r < 0.85)
	{
		return sprintf('UPDATE power_user SET user_name = %s, usage_type = %s, phone = %s, address = %s WHERE user_id = %d;',
			maybe_null(0.15, lit(one_of(@names))), maybe_null(0.15, lit(one_of(@usages))), phone(),
			maybe_null(0.3, lit('新地址')), $u);
	}
	if ($r < 0.87)
	{
		my $col = one_of('user_name', 'usage_type', 'region_id', 'region_name', 'address', 'phone', 'create_time',
			'update_time');
		return "UPDATE power_user SET $col = NULL WHERE user_id = $u;";
	}
	if ($r < 0.90)
	{
		# the user's key changes: the readings keep pointing at the old id (now unknown)
		my $new = $next_user++;
		model('remove', $users, $u);
		model('add', $gone, $u);
		model('add', $users, $new);
		return "UPDATE power_user SET user_id = $new WHERE user_id = $u;";
	}
	if ($r < 0.94)
	{
		model('remove', $users, $u);
		model('add', $gone, $u);
		return "DELETE FROM power_user WHERE user_id = $u;";
	}
	if ($r < 0.96)
	{
		# move every user of one region to another, in one statement
		my ($reg, $rn) = region_values();
		return sprintf('UPDATE power_user SET region_id = %s, region_name = %s WHERE region_id = %d;', $reg, $rn,
			1 + int(rand(6)));
	}
	if ($r < 0.98)
	{
		# a duplicate: a reading equal to another but for its key
		my $new = $next_reading++;
		model('add', $readings, $new);
		return "INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date,"
		  . ' meter_reading_before, meter_reading_after, remark) SELECT'
		  . " $new, user_id, consumption_amount, consumption_cost, consumption_date, meter_reading_before,"
		  . " meter_reading_after, remark FROM power_consumption WHERE consumption_id = $c;";
	}
	# the extreme of a reading's day goes (the model does not follow it, as for multi-row deletes)
	return sprintf('DELETE FROM power_consumption WHERE consumption_id = (SELECT consumption_id FROM power_consumption'
		  . ' WHERE consumption_date::date = (SELECT consumption_date::date FROM power_consumption WHERE consumption_id = %d)'
		  . ' ORDER BY consumption_amount %s, consumption_id LIMIT 1);', $c, one_of('DESC NULLS LAST', 'ASC NULLS LAST'));
}

# ---- setup ---------------------------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE EXTENSION stategrid_ivm');
$node->safe_psql('postgres', $schema_sql);
$node->safe_psql('postgres', 'ALTER TABLE power_consumption DROP CONSTRAINT power_consumption_user_id_fkey');

# existing data, copied by the backfill
my @initial;
push @initial, insert_user($next_user++) for 1 .. 40;
push @initial, insert_reading() for 1 .. 300;
@undo = ();
$node->safe_psql('postgres', join("\n", 'BEGIN;', @initial, 'COMMIT;'));

my $warehouse = $warehouse_sql;
$warehouse =~ s/:'pipeline'/'p'/g;
$node->safe_psql('postgres', q{
SELECT stategrid_ivm.create_pipeline('p');
SELECT stategrid_ivm.add_source('p', 'power_user');
SELECT stategrid_ivm.add_source('p', 'power_consumption');
} . $warehouse);
is($node->safe_psql('postgres', q{SELECT string_agg(view_name, ',' ORDER BY view_id) FROM stategrid_ivm.view}),
	'public.dwd_power_user_info,public.dwd_power_consumption_detail,public.dws_region_daily_stats,public.dws_user_ranking',
	'the four State Grid views are defined');

# Aggregate views under both strategies (name_r: recompute, name_a: auto), compared by check().
my %pairs = (
	# over the mirror: NULL user ids and dates are group keys and arguments
	p_user => q{SELECT user_id, count(*) AS readings, count(consumption_date) AS dated, sum(consumption_cost) AS cost,
	               min(consumption_date) AS first_at, max(remark) AS last_remark, count(DISTINCT remark) AS remarks
	            FROM ods_power_consumption GROUP BY user_id HAVING count(*) >= 2},
	# over the DWD detail: readings move between groups when their user changes region
	p_region_day => q{SELECT region_id, consumption_date::date AS day, count(*) AS readings,
	               sum(consumption_amount) AS total, round(avg(consumption_amount), 2) AS avg_amount,
	               min(consumption_amount) AS lo, max(consumption_amount) AS hi, count(DISTINCT user_id) AS users,
	               max(consumption_amount) - min(consumption_amount) AS spread
	            FROM dwd_power_consumption_detail GROUP BY region_id, consumption_date::date},
	p_large => q{SELECT usage_type, count(*) AS readings, sum(consumption_cost) AS cost, max(consumption_amount) AS hi,
	               avg(consumption_cost) AS avg_cost
	            FROM dwd_power_consumption_detail WHERE consumption_amount >= 250 GROUP BY usage_type},
	# over a DWS table (itself over the DWD detail, over the mirrors)
	p_region => q{SELECT region_id, count(*) AS days, sum(user_count) AS users, min(stat_date) AS first_day,
	               max(stat_date) AS last_day, count(DISTINCT region_name) AS names
	            FROM dws_region_daily_stats GROUP BY region_id},
	# without GROUP BY: one row, also over an empty input
	p_total => q{SELECT count(*) AS readings, count(consumption_date) AS dated, sum(consumption_cost) AS cost,
	               avg(consumption_cost) AS avg_cost, min(consumption_amount) AS lo, max(consumption_amount) AS hi,
	               min(consumption_date) AS first_at, max(remark) AS last_remark, count(DISTINCT user_id) AS users
	            FROM ods_power_consumption},
	p_total_large => q{SELECT count(*) AS readings, max(consumption_amount) - min(consumption_amount) AS spread,
	               round(avg(consumption_amount), 2) AS avg_amount, count(DISTINCT region_id) AS regions
	            FROM dwd_power_consumption_detail WHERE consumption_amount >= 250 HAVING count(*) > 1},
	# DISTINCT: NULLs, an expression, over the DWD detail (rows move when users change region)
	p_distinct => q{SELECT DISTINCT user_id, consumption_date::date AS day, remark IS NULL AS no_remark
	            FROM ods_power_consumption},
	p_distinct_region => q{SELECT DISTINCT region_id, usage_type FROM dwd_power_consumption_detail
	            WHERE consumption_amount < 400});
# General join views (join_plan.cpp), drawn from the seed (see the top of the file).
my @join_types = ('JOIN', 'LEFT JOIN', 'RIGHT JOIN', 'FULL JOIN');
my %joins;
{
	# users joined with users on a column that is not their key (many-to-many, NULLs)
	my $col = one_of('region_id', 'user_name', 'region_name', 'usage_type');
	my $keys = chance(0.6) ? 'u1.user_id AS u1_id, u2.user_id AS u2_id, ' : '';
	my $extra = $col eq 'usage_type' || chance(0.5) ? ' AND u1.user_id < u2.user_id' : '';
	$extra .= one_of('', '', q{ AND u2.phone IS NOT NULL}, q{ AND u1.usage_type <> '工业'});
	$joins{j_users} = "SELECT ${keys}u1.$col AS c1, u1.user_name AS name1, u2.user_name AS name2, u2.user_id AS partner
	    FROM ods_power_user u1 " . one_of(@join_types) . " ods_power_user u2 ON u1.$col = u2.$col$extra";
	# readings joined with readings of the same user (a non-key column with NULLs)
	$joins{j_readings} = 'SELECT c1.consumption_id AS id1, ' . (chance(0.7) ? 'c2.consumption_id AS id2, ' : '')
	  . 'c1.user_id, c1.consumption_amount AS amount1, c2.consumption_amount AS amount2
	    FROM ods_power_consumption c1 ' . one_of(@join_types) . ' ods_power_consumption c2
	    ON c2.user_id = c1.user_id AND c2.consumption_id ' . one_of('<', '<>') . ' c1.consumption_id'
	  . one_of('', ' AND c2.consumption_amount >= 250', ' AND c1.remark IS NOT NULL');
	# readings with their user on the user's key, any join type, maybe an extra ON condition, a
	# projection with or without the keys
	$joins{j_reading_user} = 'SELECT ' . (chance(0.5) ? 'c.consumption_id, u.user_id AS uid, ' : '')
	  . 'c.consumption_amount, u.user_name, u.region_id
	    FROM ods_power_consumption c ' . one_of(@join_types) . ' ods_power_user u ON u.user_id = c.user_id'
	  . one_of('', q{ AND u.usage_type = '居民'}, ' AND c.consumption_amount < 250');
	# an aggregate view and a projection view joined on a column that is neither's key
	$joins{j_stats_users} = 'SELECT s.region_id, s.stat_date, s.total_consumption, i.user_id, i.user_name
	    FROM dws_region_daily_stats s ' . one_of(@join_types) . ' dwd_power_user_info i ON i.region_id = s.region_id'
	  . one_of('', q{ AND i.usage_type = '居民'});
	# subqueries
	my $not = sub { return chance(0.5) ? 'NOT ' : '' };
	my @subs = (
		sub { 'SELECT u.user_id, u.user_name FROM ods_power_user u WHERE ' . $not->()
			  . 'EXISTS (SELECT 1 FROM ods_power_consumption c WHERE c.user_id = u.user_id'
			  . one_of('', ' AND c.consumption_amount >= 250', ' AND c.remark IS NULL') . ')' },
		sub { 'SELECT u.user_id, u.region_id FROM ods_power_user u WHERE u.user_id ' . $not->()
			  . 'IN (SELECT user_id FROM ods_power_consumption'
			  . one_of('', ' WHERE remark IS NOT NULL', ' WHERE consumption_amount > 450') . ')' },
		sub { 'SELECT c.consumption_id, c.user_id FROM ods_power_consumption c WHERE c.user_id ' . $not->()
			  . 'IN (SELECT user_id FROM ods_power_user WHERE region_id = ' . (1 + int(rand(6))) . ')' },
		sub { 'SELECT c.consumption_id, c.consumption_amount FROM ods_power_consumption c WHERE ' . $not->()
			  . 'EXISTS (SELECT 1 FROM ods_power_user u WHERE u.user_id = c.user_id AND u.usage_type = '
			  . lit(one_of(@usages)) . ')' },
		# NULL region ids in the subquery, over a view
		sub { 'SELECT d.consumption_id, d.region_id FROM dwd_power_consumption_detail d WHERE d.region_id ' . $not->()
			  . 'IN (SELECT region_id FROM ods_power_user WHERE usage_type = ' . lit(one_of(@usages)) . ')' },
		sub { 'SELECT u.user_id, u.phone FROM ods_power_user u WHERE ' . $not->()
			  . "EXISTS (SELECT 1 FROM ods_power_consumption WHERE consumption_amount = 0.00)" });
	for my $i (1 .. 3)
	{
		my $pick = int(rand(@subs));
		$joins{"j_sub$i"} = splice(@subs, $pick, 1)->();
	}
	# a join over the users' join view
	$joins{j_over_join} = 'SELECT j.c1, j.name2, j.partner, c.consumption_id, c.consumption_amount
	    FROM j_users j ' . one_of(@join_types) . ' ods_power_consumption c ON c.user_id = j.partner'
	  . one_of('', ' AND c.consumption_amount >= 400');
	# an outer join over an inner join with a join view (whose key is NULL in its NULL-extended
	# rows): a user's usage type alone makes or breaks the inner match, and the reading's
	# NULL-extended row comes or goes two joins away
	$joins{j_nested} = 'SELECT c0.consumption_id, c0.user_id, r.id1, r.amount2, u.user_name
	    FROM ods_power_consumption c0 ' . one_of('LEFT JOIN', 'FULL JOIN') . ' (j_readings r JOIN ods_power_user u
	    ON u.user_id = r.user_id AND u.usage_type = ' . lit(one_of(@usages)) . ') ON r.id1 = c0.consumption_id';
	# aggregates over join views, kept twice like the other pairs
	$pairs{p_join_users} = 'SELECT c1, count(*) AS n, count(partner) AS partners, count(DISTINCT name2) AS names
	    FROM j_users GROUP BY c1';
	$pairs{p_join_readings} = 'SELECT user_id, count(*) AS n, sum(amount2) AS total, max(amount1) AS hi, min(amount2) AS lo
	    FROM j_readings GROUP BY user_id';
}
# in dependency order: j_over_join and j_nested read other join views
my @over = ('j_over_join', 'j_nested');
for my $name ((grep { my $n = $_; !grep { $_ eq $n } @over } sort keys %joins), @over)
{
	note "$name: $joins{$name}";
	$node->safe_psql('postgres', qq{SELECT stategrid_ivm.add_view('p', '$name', \$v\$$joins{$name}\$v\$)});
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT strategy, ',') FROM stategrid_ivm.views WHERE view_name ~ '^public\.j_'}),
	'differential', 'the join views are maintained by delta rules');

for my $name (sort keys %pairs)
{
	$node->safe_psql('postgres', qq{
SET stategrid_ivm.view_strategy = 'recompute';
SELECT stategrid_ivm.add_view('p', '${name}_r', \$v\$$pairs{$name}\$v\$);
SET stategrid_ivm.view_strategy = 'auto';
SELECT stategrid_ivm.add_view('p', '${name}_a', \$v\$$pairs{$name}\$v\$);
});
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(regexp_replace(view_name, '^public\.', '') || ' ' || strategy, ', ' ORDER BY view_name COLLATE "C")
	FROM stategrid_ivm.views WHERE view_name ~ '^public\.p_'}),
	join(', ', sort map { ("${_}_a differential", "${_}_r recompute") } keys %pairs),
	'each pair has a differential and a recomputed view');
$node->safe_psql('postgres', q{SELECT stategrid_ivm.start_pipeline('p')});

# SGIVM_RANDOM_EXTRA_VIEWS=1: more views, over the other supported constructs, checked by verify too
if ($ENV{SGIVM_RANDOM_EXTRA_VIEWS})
{
	$node->safe_psql('postgres', q{
SELECT stategrid_ivm.add_view('p', 'x_inner', $v$
    SELECT c.consumption_id, c.consumption_amount * 2 AS double_amount, u.user_name, u.region_id,
           CASE WHEN c.consumption_amount >= 250 THEN 'high' ELSE 'normal' END AS level
    FROM ods_power_consumption c JOIN ods_power_user u ON u.user_id = c.user_id
    WHERE u.usage_type <> '工业' AND c.consumption_cost IS NOT NULL$v$);
SELECT stategrid_ivm.add_view('p', 'x_having', $v$
    SELECT user_id, consumption_date::date AS day, COUNT(*) AS readings, COUNT(consumption_cost) AS costed,
           COUNT(DISTINCT remark) AS remarks, AVG(consumption_amount) AS avg_amount,
           MIN(consumption_amount) AS min_amount, MAX(consumption_amount) AS max_amount
    FROM ods_power_consumption GROUP BY user_id, consumption_date::date HAVING COUNT(*) >= 2$v$);
SELECT stategrid_ivm.add_view('p', 'x_rank', $v$
    SELECT region_id, consumption_date::date AS day, usage_type, SUM(consumption_amount) AS total,
           RANK() OVER (PARTITION BY region_id, consumption_date::date ORDER BY SUM(consumption_amount) DESC NULLS LAST) AS rk,
           DENSE_RANK() OVER (PARTITION BY region_id, consumption_date::date ORDER BY SUM(consumption_amount) DESC NULLS LAST) AS drk
    FROM dwd_power_consumption_detail GROUP BY region_id, consumption_date::date, usage_type$v$);
SELECT stategrid_ivm.add_view('p', 'x_region_summary', $v$
    SELECT region_id, COUNT(*) AS days, SUM(total_consumption) AS total, MAX(user_count) AS max_users
    FROM dws_region_daily_stats GROUP BY region_id$v$);
SELECT stategrid_ivm.add_view('p', 'x_top_users', $v$
    SELECT user_id, user_name, region_id, region_name, stat_date, total_consumption, ranking
    FROM dws_user_ranking WHERE ranking <= 2$v$);
});
	note 'extra views: x_inner, x_having, x_rank, x_region_summary, x_top_users';
}

my $workload_file = "$PostgreSQL::Test::Utils::log_path/010_random_diff_workload_$seed.sql";
open my $wl, '>', $workload_file or die "cannot write $workload_file: $!";
print $wl "-- seed $seed, batch_size $batch_size\n", (map { "-- view $_: $joins{$_}\n" } sort keys %joins), join("\n", @initial), "\n";

my $paused = 0;
my @failures;
my $kills = 0;

# SIGKILL of the worker while it applies what a round just committed: the postmaster restarts
# every backend, the pipeline goes on from its origin's progress (exactly once).
sub kill_worker
{
	my $pid = $node->safe_psql('postgres', q{SELECT worker_pid FROM stategrid_ivm.pipelines WHERE name = 'p'});
	return unless $pid =~ /^\d+$/;
	usleep(int(rand(300_000)));
	return unless kill('KILL', $pid);
	$kills++;
	print $wl "-- SIGKILL of the worker ($pid)\n";
	for (1 .. 200)
	{
		last unless kill(0, $pid);
		usleep(50_000);
	}
	# until the server answers again
	for (1 .. 300)
	{
		my ($rc) = $node->psql('postgres', 'SELECT 1');
		last if $rc == 0;
		usleep(100_000);
	}
}

# sync, then verify: every table must be ok
sub check
{
	my ($label) = @_;
	if ($paused)
	{
		$node->safe_psql('postgres', q{SELECT stategrid_ivm.resume_pipeline('p')});
		print $wl "SELECT stategrid_ivm.resume_pipeline('p');\n";
		$paused = 0;
	}
	my ($rc, $out, $err) = $node->psql('postgres', q{SELECT stategrid_ivm.sync('p', '120 s') IS NOT NULL});
	if ($rc != 0 || $out ne 't')
	{
		fail("$label: sync");
		diag("seed $seed, $label: sync failed: $err");
		push @failures, "$label: sync";
		return 0;
	}
	my $bad = $node->safe_psql('postgres', q{
		SELECT string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; ')
		FROM stategrid_ivm.verify('p') WHERE ok IS NOT TRUE});
	my $ok = is($bad, '', "$label: verify is clean");
	if (!$ok)
	{
		diag("seed $seed, $label: verify failed for $bad (SGIVM_TAP_SEED=$seed repeats it; workload in $workload_file)");
		push @failures, "$label: $bad";
	}
	# each pair of views, row for row as text
	my $differ = $node->safe_psql('postgres', join(' UNION ALL ', map { qq{
		SELECT '$_: ' || count(*) FROM ((SELECT t::text FROM ${_}_r t EXCEPT ALL SELECT t::text FROM ${_}_a t)
		    UNION ALL (SELECT t::text FROM ${_}_a t EXCEPT ALL SELECT t::text FROM ${_}_r t)) d HAVING count(*) > 0} }
		  sort keys %pairs));
	$differ =~ s/\n/, /g;
	if (!is($differ, '', "$label: each pair of views agrees"))
	{
		diag("seed $seed, $label: recomputed and differential views differ in rows: $differ");
		push @failures, "$label: pairs $differ";
		$ok = 0;
	}
	print $wl "-- check $label: " . ($ok ? 'ok' : "FAILED $bad $differ") . "\n";
	return $ok;
}

check('after the backfill');

# ---- the random workload -----------------------------------------------------------------------
my ($ops, $txns, $rollbacks, $pauses, $truncates) = (0, 0, 0, 0, 0);
my $next_check = $check_every;
my $last_check = -1;
my @round;
while ($ops < $ops_target)
{
	# pause and resume between transactions
	if (!$paused && chance(0.02))
	{
		push @round, q{SELECT stategrid_ivm.pause_pipeline('p');};
		$paused = 1;
		$pauses++;
	}
	elsif ($paused && chance(0.08))
	{
		push @round, q{SELECT stategrid_ivm.resume_pipeline('p');};
		$paused = 0;
	}

	if (chance(0.0006) && $truncates < 1)
	{
		# TRUNCATE is a change like any other (DESIGN.md §5)
		push @round, 'TRUNCATE power_consumption;';
		$readings->clear;
		$truncates++;
		$ops++;
	}
	elsif (chance(0.35))
	{
		# a single statement, committed on its own
		push @round, random_op();
		$ops++;
	}
	else
	{
		my $n = chance(0.1) ? 10 + int(rand(40)) : 1 + int(rand(6));
		my @stmts = ('BEGIN;');
		@undo = ();
		my $savepoint;
		for my $i (1 .. $n)
		{
			if (!defined $savepoint && chance(0.05))
			{
				push @stmts, 'SAVEPOINT s;';
				$savepoint = scalar @undo;
			}
			push @stmts, random_op();
			$ops++;
			if (defined $savepoint && chance(0.2))
			{
				if (chance(0.5)) { push @stmts, 'ROLLBACK TO SAVEPOINT s;'; undo_to($savepoint); }
				else { push @stmts, 'RELEASE SAVEPOINT s;' }
				$savepoint = undef;
			}
		}
		if (chance(0.07))
		{
			push @stmts, 'ROLLBACK;';
			undo_to(0);
			$rollbacks++;
		}
		else
		{
			push @stmts, 'COMMIT;';
		}
		@undo = ();
		push @round, join("\n", @stmts);
	}
	$txns++;

	if ($ops >= $next_check || $ops >= $ops_target || @round >= 100)
	{
		my $sql = join("\n", @round);
		print $wl $sql, "\n";
		my ($rc, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 1);
		if ($rc != 0)
		{
			fail("workload statements run (after $ops operations)");
			diag("seed $seed: a workload statement failed: $err");
			push @failures, "workload: $err";
			last;
		}
		@round = ();
		kill_worker() if !$paused && $kills < 3 && chance(0.3);
	}
	if ($ops >= $next_check)
	{
		check("after $ops operations");
		$last_check = $ops;
		$next_check += $check_every;
	}
}
check("at the end ($ops operations)") if $last_check != $ops;
close $wl;
note "workload: $ops operations in $txns transactions ($rollbacks rolled back), $pauses pauses, $truncates truncates, $kills worker kills; in $workload_file";

# ---- the four tables against DESIGN.md §1 computed over the sources -----------------------------
my %oracle = (
	dwd_power_user_info => [
		q{user_id, user_name, usage_type, region_id, region_name, address, phone, create_time, update_time},
		q{SELECT user_id, COALESCE(user_name, '未知用户'), COALESCE(usage_type, '未知'), COALESCE(region_id, 0),
		         COALESCE(region_name, '未知地区'), address,
		         CASE WHEN length(phone) >= 7 THEN left(phone, 3) || '****' || right(phone, 4) ELSE phone END,
		         create_time, update_time
		  FROM power_user} ],
	dwd_power_consumption_detail => [
		q{consumption_id, user_id, user_name, consumption_amount, consumption_cost, consumption_date, region_id,
		  region_name, usage_type},
		q{SELECT c.consumption_id, c.user_id, COALESCE(u.user_name, '未知用户'), c.consumption_amount,
		         c.consumption_cost, c.consumption_date, COALESCE(u.region_id, 0), COALESCE(u.region_name, '未知地区'),
		         COALESCE(u.usage_type, '未知')
		  FROM power_consumption c LEFT JOIN power_user u ON u.user_id = c.user_id} ],
	dws_region_daily_stats => [
		q{region_id, region_name, stat_date, total_consumption, total_cost, user_count, avg_consumption,
		  max_consumption, min_consumption},
		q{SELECT COALESCE(u.region_id, 0), COALESCE(u.region_name, '未知地区'), c.consumption_date::date,
		         sum(c.consumption_amount), sum(c.consumption_cost), count(DISTINCT c.user_id),
		         round(avg(c.consumption_amount), 2), max(c.consumption_amount), min(c.consumption_amount)
		  FROM power_consumption c LEFT JOIN power_user u ON u.user_id = c.user_id
		  GROUP BY 1, 2, 3} ],
	dws_user_ranking => [
		q{user_id, user_name, region_id, region_name, stat_date, total_consumption, total_cost, ranking},
		q{SELECT c.user_id, COALESCE(u.user_name, '未知用户'), COALESCE(u.region_id, 0),
		         COALESCE(u.region_name, '未知地区'), c.consumption_date::date,
		         sum(c.consumption_amount), sum(c.consumption_cost),
		         row_number() OVER (PARTITION BY c.consumption_date::date, COALESCE(u.region_id, 0)
		                            ORDER BY sum(c.consumption_amount) DESC, c.user_id)
		  FROM power_consumption c LEFT JOIN power_user u ON u.user_id = c.user_id
		  GROUP BY 1, 2, 3, 4, 5} ]);
for my $t (sort keys %oracle)
{
	my ($cols, $query) = @{ $oracle{$t} };
	my $diff = $node->safe_psql('postgres', qq{
		SELECT (SELECT count(*) FROM ($query EXCEPT ALL SELECT $cols FROM $t) m) || ' missing, '
		    || (SELECT count(*) FROM (SELECT $cols FROM $t EXCEPT ALL ($query)) e) || ' extra, '
		    || (SELECT count(*) FROM $t) || ' rows'});
	like($diff, qr/^0 missing, 0 extra, \d+ rows$/, "$t equals its definition over the sources ($diff)")
	  or diag("seed $seed: $t differs from its definition over the sources: $diff");
}

my $status = $node->safe_psql('postgres', q{
	SELECT state || ' ' || transactions_applied || ' transactions, ' || rows_applied || ' rows applied'
	FROM stategrid_ivm.pipelines WHERE name = 'p'});
like($status, qr/^running /, "pipeline still running ($status)");
note 'tables: ' . $node->safe_psql('postgres', q{
	SELECT string_agg(view_name || ' ' || rows, ', ' ORDER BY view_name) FROM stategrid_ivm.views});
note 'pairs (rows of the differential view): ' . $node->safe_psql('postgres', 'SELECT ' .
	join(" || ', ' || ", map { qq{'$_ ' || (SELECT count(*) FROM ${_}_a)} } sort keys %pairs));
diag("seed $seed failed: " . join('; ', @failures)) if @failures;

my $log = slurp_file($node->logfile);
# (the worker kills above are signal 9; nothing else may crash)
my $crashes = () = $log =~ /was terminated by signal (?!9)/g;
is($crashes, 0, 'no server process crashed');

$node->stop;
note sprintf('test took %.1f s', time() - $t0);
done_testing();
