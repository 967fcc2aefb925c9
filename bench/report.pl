#!/usr/bin/env perl
# Turns the results file of bench/run (one tab-separated record per line; bench/lib/common.sh
# lists the kinds) into the human report (Markdown) and the machine-readable one (JSON):
# medians, minima and maxima over the repetitions, ratios per repetition, targets MET or MISSED.
#
#   perl bench/report.pl RESULTS.tsv REPORT.md REPORT.json
use strict;
use warnings;
use utf8;
use JSON::PP;

my ($in, $md_out, $json_out) = @ARGV;
die "usage: $0 RESULTS.tsv REPORT.md REPORT.json\n" unless defined $json_out;

my (%meta, @order, %sc);
sub scenario {
    my ($id) = @_;
    unless ($sc{$id}) {
        push @order, $id;
        $sc{$id} = { id => $id, title => $id, description => '', metrics => [], metric => {},
                     ratios => [], targets => [], info => [], notes => [], status => 'not run',
                     status_text => '', unsupported => undef };
    }
    return $sc{$id};
}

open my $fh, '<:encoding(UTF-8)', $in or die "$in: $!\n";
while (my $line = <$fh>) {
    chomp $line;
    next if $line eq '';
    my ($kind, @f) = split /\t/, $line, -1;
    if ($kind eq 'meta') {
        $meta{$f[0]} = $f[1];
    } elsif ($kind eq 'scenario') {
        my $s = scenario($f[0]);
        $s->{title} = $f[1];
        $s->{description} = $f[2] // '';
    } elsif ($kind eq 'value') {
        my ($id, $metric, $rep, $value, $unit, $label) = @f;
        my $s = scenario($id);
        unless ($s->{metric}{$metric}) {
            $s->{metric}{$metric} = { name => $metric, unit => $unit, label => $label // '', runs => {} };
            push @{ $s->{metrics} }, $metric;
        }
        $s->{metric}{$metric}{runs}{$rep} = $value if defined $value && $value ne '';
    } elsif ($kind eq 'ratio') {
        my ($id, $rid, $num, $den, $label) = @f;
        push @{ scenario($id)->{ratios} }, { id => $rid, num => $num, den => $den, label => $label // '' };
    } elsif ($kind eq 'target') {
        my ($id, $tid, $subject, $op, $threshold, $label) = @f;
        push @{ scenario($id)->{targets} }, { id => $tid, subject => $subject, op => $op,
                                               threshold => $threshold, label => $label // '' };
    } elsif ($kind eq 'info') {
        push @{ scenario($f[0])->{info} }, [$f[1], $f[2]];
    } elsif ($kind eq 'note') {
        push @{ scenario($f[0])->{notes} }, $f[1];
    } elsif ($kind eq 'unsupported') {
        scenario($f[0])->{unsupported} = $f[1] // '';
    } elsif ($kind eq 'status') {
        my $s = scenario($f[0]);
        $s->{status} = $f[1];
        $s->{status_text} = $f[2] // '';
    }
}
close $fh;

sub stats {
    my @v = sort { $a <=> $b } map { 0 + $_ } @_;
    return undef unless @v;
    my $n = @v;
    my $median = $n % 2 ? $v[$n / 2] : ($v[$n / 2 - 1] + $v[$n / 2]) / 2;
    return { median => $median, min => $v[0], max => $v[-1], n => $n, values => [ map { 0 + $_ } @_ ] };
}

# numbers as people read them: 3 significant digits, thousands grouped
sub fmt {
    my ($x) = @_;
    return '–' unless defined $x;
    my $a = abs $x;
    my $s;
    if ($a >= 1000) { $s = sprintf '%.0f', $x; 1 while $s =~ s/^(-?\d+)(\d{3})/$1,$2/; return $s; }
    if ($a >= 100) { return sprintf '%.0f', $x; }
    if ($a >= 10) { return sprintf '%.1f', $x; }
    if ($a >= 1) { return sprintf '%.2f', $x; }
    if ($a == 0) { return '0'; }
    if ($a >= 0.01) { return sprintf '%.3f', $x; }
    return sprintf '%.2g', $x;
}

# ---- computed figures ---------------------------------------------------------------------------
my @summary;
for my $id (@order) {
    my $s = $sc{$id};
    for my $m (@{ $s->{metrics} }) {
        my $mm = $s->{metric}{$m};
        my @reps = sort { $a <=> $b } keys %{ $mm->{runs} };
        $mm->{stats} = stats(map { $mm->{runs}{$_} } @reps);
    }
    my %subject;
    $subject{$_} = $s->{metric}{$_}{stats} for @{ $s->{metrics} };
    for my $r (@{ $s->{ratios} }) {
        my $n = $s->{metric}{ $r->{num} };
        my $d = $s->{metric}{ $r->{den} };
        my @v;
        if ($n && $d) {
            # both sides measured in the same repetitions: paired; otherwise (a baseline measured
            # once, or fewer times than the runs it is compared with) every run against the
            # baseline's median
            my $paired = join(',', sort keys %{ $n->{runs} }) eq join(',', sort keys %{ $d->{runs} });
            my $dmed = stats(values %{ $d->{runs} });
            for my $rep (sort { $a <=> $b } keys %{ $n->{runs} }) {
                my $dv = $paired ? $d->{runs}{$rep} : $dmed && $dmed->{median};
                push @v, $n->{runs}{$rep} / $dv if defined $dv && $dv != 0;
            }
        }
        $r->{stats} = stats(@v);
        $subject{ $r->{id} } = $r->{stats};
    }
    for my $t (@{ $s->{targets} }) {
        my $st = $subject{ $t->{subject} };
        my $unit = $s->{metric}{ $t->{subject} } ? $s->{metric}{ $t->{subject} }{unit} : '×';
        $t->{unit} = $unit;
        my $with_unit = sub { $unit eq '×' ? fmt($_[0]) . '×' : fmt($_[0]) . " $unit" };
        if (!$st && defined $s->{unsupported}) {
            $t->{result} = 'NOT SUPPORTED';
            $t->{verdict} = "NOT SUPPORTED: $s->{unsupported}";
        } elsif (!$st) {
            $t->{result} = 'NOT MEASURED';
            $t->{verdict} = $s->{status} eq 'failed' ? 'the scenario failed' : 'no measurement';
        } else {
            my ($v, $th) = ($st->{median}, $t->{threshold});
            $t->{value} = $v;
            my $met = $t->{op} eq 'le' ? $v <= $th : $v >= $th;
            $t->{met} = $met ? JSON::PP::true : JSON::PP::false;
            $t->{result} = $met ? 'MET' : 'MISSED';
            my $sym = $t->{op} eq 'le' ? '≤' : '≥';
            if ($met) {
                $t->{verdict} = sprintf 'MET: %s (target %s %s)', $with_unit->($v), $sym, $with_unit->($th);
            } elsif ($t->{op} eq 'le') {
                # how many times too high: what has to be divided away to meet the target
                $t->{miss_factor} = $th > 0 ? $v / $th : undef;
                $t->{verdict} = sprintf 'MISSED: %s where the target is %s %s, %s× the target (%.0f %% over)',
                    $with_unit->($v), $sym, $with_unit->($th), fmt($v / $th), 100 * ($v / $th - 1);
            } else {
                $t->{miss_factor} = $v > 0 ? $th / $v : undef;
                $t->{verdict} = sprintf 'MISSED: %s where the target is %s %s, %.0f %% short',
                    $with_unit->($v), $sym, $with_unit->($th), 100 * (1 - $v / $th);
            }
        }
        push @summary, [$s, $t];
    }
}

# ---- Markdown -----------------------------------------------------------------------------------
my @md;
push @md, '# stategrid_ivm benchmark report', '';
push @md, sprintf 'Generated by `bench/run` (%s mode) on %s, commit `%s`, in %s s. '
    . 'The figures are the median of the repetitions, with the minimum and maximum; a ratio is '
    . 'computed per repetition (both sides measured in the same repetition), then its median.',
    $meta{mode} // '?', $meta{date} // '?', $meta{commit} // '?', $meta{duration_s} // '?';
push @md, '';
if (($meta{mode} // '') eq 'quick') {
    push @md, '**Quick mode** (CI smoke run): tiny sizes, one repetition. These figures say only that '
        . 'every scenario runs and stays correct; they are not a measurement of speed.', '';
}
push @md, '## Machine', '';
push @md, '| CPU | cores | RAM | OS | PostgreSQL | load average before → after |', '|---|---:|---:|---|---|---|';
push @md, sprintf '| %s | %s | %s | %s (kernel %s) | %s | %s → %s |', map { $_ // '?' }
    @meta{qw(cpu cores ram os kernel pg_version load_before load_after)};
push @md, '';
push @md, "Server settings: $meta{settings}." if $meta{settings};
push @md, '';
# a busy machine makes every elapsed time longer: say so where the reader looks first
my ($load) = split ' ', ($meta{load_before} // '');
if (defined $load && $meta{cores} && $meta{cores} =~ /^\d+$/ && $load > 0.5 * $meta{cores}) {
    push @md, sprintf '**The machine was busy** (load average %s on %s cores when the run started): elapsed '
        . 'times are longer than on a quiet machine, and the CPU-time figures of the catch-up scenario '
        . 'are the better comparison.', $load, $meta{cores};
    push @md, '';
}
push @md, sprintf 'Repetitions: %s (memory runs and scaling runs above 100,000 readings: %s). Parameters: `%s`.',
    $meta{repeats} // '?', $meta{big_repeats} // '?', $meta{parameters} // '';
push @md, '';

push @md, '## Targets', '';
push @md, '| scenario | target | measured (median) | result |', '|---|---|---:|---|';
for (@summary) {
    my ($s, $t) = @$_;
    push @md, sprintf '| %s | %s | %s | %s |', $s->{title}, $t->{label},
        defined $t->{value} ? ($t->{unit} eq '×' ? fmt($t->{value}) . '×' : fmt($t->{value}) . " $t->{unit}") : '–',
        $t->{result} eq 'MET' ? '**MET**' : $t->{result} eq 'MISSED' ? '**MISSED** — ' . ($t->{verdict} =~ s/^MISSED: //r)
            : $t->{result} eq 'NOT SUPPORTED' ? '**NOT SUPPORTED** — ' . ($t->{verdict} =~ s/^NOT SUPPORTED: //r)
            : "$t->{result} ($t->{verdict})";
}
push @md, '';
if (grep { $_->[1]{result} eq 'MISSED' } @summary) {
    push @md, 'Why a target is missed, and what would change it: bench/README.md, section *Why targets are missed*.', '';
}
my @failed = grep { $_->{status} eq 'failed' } map { $sc{$_} } @order;
if (@failed) {
    push @md, '**Failed scenarios:** ' . join(', ', map { "$_->{title} ($_->{status_text})" } @failed) . '.', '';
}

push @md, '## Scenarios', '';
for my $id (@order) {
    my $s = $sc{$id};
    push @md, "### $s->{title}", '';
    push @md, $s->{description} . '.', '' if $s->{description};
    push @md, sprintf 'Status: %s%s.', $s->{status}, $s->{status_text} ? " ($s->{status_text})" : '';
    push @md, '';
    push @md, "**Not supported by this engine:** $s->{unsupported}", '' if defined $s->{unsupported};
    if (@{ $s->{info} }) {
        push @md, 'Sizes and settings: ' . join('; ', map { "$_->[0] = $_->[1]" } @{ $s->{info} }) . '.', '';
    }
    if (@{ $s->{metrics} }) {
        push @md, '| measurement | median | min | max | unit | runs |', '|---|---:|---:|---:|---|---:|';
        for my $m (@{ $s->{metrics} }) {
            my $mm = $s->{metric}{$m};
            my $st = $mm->{stats};
            push @md, sprintf '| %s (`%s`) | %s | %s | %s | %s | %s |', $mm->{label}, $m,
                $st ? (fmt($st->{median}), fmt($st->{min}), fmt($st->{max})) : ('–', '–', '–'),
                $mm->{unit}, $st ? $st->{n} : 0;
        }
        push @md, '';
    }
    if (@{ $s->{ratios} }) {
        push @md, '| ratio | median | min | max |', '|---|---:|---:|---:|';
        for my $r (@{ $s->{ratios} }) {
            my $st = $r->{stats};
            push @md, sprintf '| %s | %s | %s | %s |', $r->{label},
                $st ? (fmt($st->{median}), fmt($st->{min}), fmt($st->{max})) : ('–', '–', '–');
        }
        push @md, '';
    }
    for my $t (@{ $s->{targets} }) {
        push @md, sprintf '- Target *%s*: **%s**', $t->{label}, $t->{verdict};
    }
    push @md, '' if @{ $s->{targets} };
    push @md, map { "- $_" } @{ $s->{notes} };
    push @md, '' if @{ $s->{notes} };
}

open my $md, '>:encoding(UTF-8)', $md_out or die "$md_out: $!\n";
print $md join("\n", @md), "\n";
close $md;

# ---- JSON ---------------------------------------------------------------------------------------
my @js;
for my $id (@order) {
    my $s = $sc{$id};
    push @js, {
        id => $id, title => $s->{title}, description => $s->{description},
        status => $s->{status}, status_text => $s->{status_text},
        (defined $s->{unsupported} ? (unsupported => $s->{unsupported}) : ()),
        info => { map { $_->[0] => $_->[1] } @{ $s->{info} } },
        metrics => [ map {
            my $mm = $s->{metric}{$_};
            { name => $_, label => $mm->{label}, unit => $mm->{unit},
              values => [ map { 0 + $mm->{runs}{$_} } sort { $a <=> $b } keys %{ $mm->{runs} } ],
              ($mm->{stats} ? (median => 0 + $mm->{stats}{median}, min => 0 + $mm->{stats}{min},
                               max => 0 + $mm->{stats}{max}) : ()) }
        } @{ $s->{metrics} } ],
        ratios => [ map {
            { id => $_->{id}, label => $_->{label}, numerator => $_->{num}, denominator => $_->{den},
              ($_->{stats} ? (values => $_->{stats}{values}, median => $_->{stats}{median},
                              min => $_->{stats}{min}, max => $_->{stats}{max}) : ()) }
        } @{ $s->{ratios} } ],
        targets => [ map {
            { id => $_->{id}, label => $_->{label}, subject => $_->{subject}, op => $_->{op},
              threshold => 0 + $_->{threshold}, result => $_->{result}, verdict => $_->{verdict},
              (defined $_->{value} ? (value => $_->{value}, met => $_->{met}) : ()),
              (defined $_->{miss_factor} ? (miss_factor => $_->{miss_factor}) : ()) }
        } @{ $s->{targets} } ],
        notes => $s->{notes},
    };
}
my $doc = { generator => 'bench/run', machine => { map { $_ => $meta{$_} } grep { defined $meta{$_} }
                qw(cpu cores ram os kernel load_before load_after) },
            postgresql => { version => $meta{pg_version}, settings => $meta{settings}, bindir => $meta{pg_bindir} },
            run => { map { $_ => $meta{$_} } grep { defined $meta{$_} }
                     qw(mode date commit duration_s repeats big_repeats parameters failed) },
            scenarios => \@js };
open my $jf, '>:encoding(UTF-8)', $json_out or die "$json_out: $!\n";
print $jf JSON::PP->new->pretty->canonical->encode($doc);
close $jf;
