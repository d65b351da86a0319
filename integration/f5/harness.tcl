# lbc's iRule harness: runs the exact `ltm rule` text of a compiled bigip.conf in tclsh against
# simulated connections, with stubs for the iRule commands lbc's templates use.
#
# What it proves: the rules are Tcl that both TMM (8.4) and tclsh accept, and for each simulated
# request they make the choice lbc intends (pool, member, fallback answer, PROXY header). What it
# does not prove: anything about TMM itself. The load-balancing step below is lbc's own model of
# BIG-IP behaviour (round robin over available members, priority groups, persistence records,
# LB_FAILED), not TMM's code. See docs/f5.md.
#
# The harness itself may use Tcl 8.6; the rules run in a safe child interpreter where the 8.5+
# commands are hidden, after a lint pass that refuses 8.5+ syntax and iRule-only operators.

namespace eval ::sim {
    variable pools [dict create]     ;# name -> {min_active N members {{address A port P pg G state S} ...}}
    variable profiles [list]         ;# profile paths the rules may name (SSL::profile)
    variable rules [list]            ;# rule texts attached to the virtual, in order
    variable vs [dict create]        ;# default_pool, l7
    variable rr [dict create]        ;# round-robin position per pool
    variable conn                    ;# the connection being simulated (array)
    variable reselect_limit 3
    variable datagroups [dict create]  ;# address data group path -> list of networks (a.b.c.d/len)
    variable tables [dict create]      ;# session table: "subtable key" -> {value V lifetime L}; lives for the run
}

# ------------------------------------------------------------------ configuration

proc ::sim::reset {} {
    variable pools; variable rules; variable vs; variable rr; variable profiles; variable datagroups
    set pools [dict create]; set rules [list]; set vs [dict create]; set rr [dict create]; set profiles [list]
    set datagroups [dict create]
    variable tables; set tables [dict create]
}

# An address (type ip) data group: its records as networks.
proc ::sim::datagroup {name networks} {
    variable datagroups
    dict set datagroups $name $networks
}

# members: a list of dicts {address A port P pg G state S}; state is one of
#   up           monitor up, session enabled, connections succeed
#   disabled     session user-disabled (hold): persisted and explicit traffic only
#   offline      state user-down (forced offline)
#   down         monitor down, the server does not answer
#   busy         monitor down (e.g. its health page says it is full) but it still accepts connections
#   unreachable  monitor up but connections fail (the monitor has not noticed yet)
proc ::sim::pool {name min_active members} {
    variable pools
    dict set pools $name [dict create min_active $min_active members $members]
}

proc ::sim::profile {name} {
    variable profiles
    lappend profiles $name
}

proc ::sim::set_state {pool address port state} {
    variable pools
    set members {}
    set found 0
    foreach m [dict get $pools $pool members] {
        if {[dict get $m address] eq $address && [dict get $m port] == $port} {
            dict set m state $state
            set found 1
        }
        lappend members $m
    }
    if {!$found} { error "no member $address $port in $pool" }
    dict set pools $pool members $members
}

proc ::sim::virtual {default_pool l7 rule_texts} {
    variable vs; variable rules
    set vs [dict create default_pool $default_pool l7 $l7]
    set rules {}
    foreach t $rule_texts {
        set problems [lint $t]
        if {[llength $problems]} { error "lint: [join $problems {; }]" }
        lappend rules $t
    }
}

# ------------------------------------------------------------------ lint (Tcl 8.4 + portable iRules)

# Comments and the insides of double-quoted words blanked, so user text cannot trip the checks.
proc ::sim::blank {text} {
    set out ""
    set inq 0
    set n [string length $text]
    set linestart 1
    for {set i 0} {$i < $n} {incr i} {
        set c [string index $text $i]
        if {$c eq "\\"} {
            append out [expr {$inq ? "  " : [string range $text $i [expr {$i + 1}]]}]
            incr i
            set linestart 0
            continue
        }
        if {!$inq && $linestart && $c eq "#"} {
            set j [string first "\n" $text $i]
            if {$j < 0} { set j $n }
            append out [string repeat " " [expr {$j - $i}]]
            set i [expr {$j - 1}]
            continue
        }
        if {$c eq "\""} {
            set inq [expr {!$inq}]
            append out $c
        } elseif {$inq} {
            append out [expr {$c eq "\n" ? "\n" : " "}]
        } else {
            append out $c
        }
        if {$c eq "\n"} {
            set linestart 1
        } elseif {![string is space $c]} {
            set linestart 0
        }
    }
    return $out
}

proc ::sim::lint {text} {
    set problems {}
    if {![info complete $text]} { lappend problems "the rule is not complete Tcl (unbalanced braces or quotes)" }
    set b [blank $text]
    if {[string first "\{*\}" $b] >= 0} { lappend problems "{*} expansion is Tcl 8.5" }
    # whole words only: a host name label such as `ni` in a.ni.example.com is not an operator
    foreach w {in ni} {
        if {[regexp "(^|\\s)${w}(\\s|\$)" $b]} { lappend problems "the `$w` operator is Tcl 8.5" }
    }
    foreach w {dict lassign lmap try throw apply lrepeat lreverse chan coroutine yield yieldto tailcall zlib} {
        if {[regexp "(^|\\s|\\\[|;)${w}(\\s|\\]|;|\$)" $b]} { lappend problems "`$w` is Tcl 8.5 or later" }
    }
    # `class match ADDR equals DG` is a command's argument, not the expr operator
    regsub -all {class\s+match\s+(\S+)\s+equals\s} $b {class match \1 = } b
    foreach w {starts_with ends_with contains equals matches_glob matches_regex} {
        if {[regexp "\\m$w\\M" $b]} { lappend problems "`$w` is an iRule-only operator (tclsh cannot run it)" }
    }
    if {[regexp {\*\*} $b]} { lappend problems "the ** operator is Tcl 8.5" }
    if {[regexp {string\s+cat\M} $b]} { lappend problems "`string cat` is Tcl 8.6" }
    foreach {all fmt} [regexp -all -inline {binary\s+scan\s+\S+\s+(\S+)} $b] {
        if {[regexp {[cSsIiWwnmtrRqQ]u} $fmt]} { lappend problems "binary scan flag u (unsigned) is Tcl 8.5: $fmt" }
    }
    if {[regexp {(^|[\[\s;])expr\s+[^\{\s]} $b]} { lappend problems "expr without braces (double substitution)" }
    # only `when` at the top level
    if {[info complete $text]} {
        set i [interp create -safe]
        $i eval {rename proc {}}
        foreach c [$i eval {info commands}] {
            catch {$i hide $c}
        }
        $i alias when ::sim::lint_when
        if {[catch {$i eval $text} err]} { lappend problems "top level: $err" }
        interp delete $i
    }
    return $problems
}

proc ::sim::lint_when {args} {
    if {[llength $args] != 2 || ![regexp {^[A-Z_]+$} [lindex $args 0]]} {
        error "expected `when EVENT {body}`, got when $args"
    }
    if {![info complete [lindex $args 1]]} { error "incomplete body of [lindex $args 0]" }
}

# ------------------------------------------------------------------ the connection

# 8.5+ commands a safe interpreter still offers; the rules must not reach them.
variable ::sim::hidden {dict lassign lmap try throw apply lrepeat lreverse chan coroutine yield yieldto tailcall zlib}

proc ::sim::new_connection {client cport vip vport} {
    variable conn; variable rules
    array unset conn
    array set conn [list client $client cport $cport vip $vip vport $vport handlers {} respond {} reject 0 \
        selected {} persist {} ssl_profile {} collecting 0 released 0 recollect 0 payload {} server_data {} \
        lb_pool {} reselect {} events {} host {} disabled 0 path / query {}]
    set i [interp create -safe]
    set conn(interp) $i
    foreach c $::sim::hidden {
        catch {$i hide $c}
    }
    foreach ns {HTTP LB TCP IP SSL} {
        $i eval [list namespace eval $ns {}]
    }
    foreach c {when pool active_members persist getfield reject log
               HTTP::host HTTP::path HTTP::uri HTTP::respond LB::status LB::server LB::reselect SSL::profile
               TCP::collect TCP::payload TCP::release TCP::respond TCP::client_port TCP::local_port
               IP::client_addr IP::local_addr class event table} {
        $i alias $c ::sim::cmd::[string map {:: _} $c]
    }
    foreach t $rules {
        if {[catch {$i eval $t} err]} { error "loading the rule: $err" }
    }
}

proc ::sim::fire {event} {
    variable conn
    foreach h $conn(handlers) {
        lassign $h ev body
        if {$ev ne $event || $conn(disabled)} { continue }
        lappend conn(events) $event
        set code [catch {$conn(interp) eval $body} err]
        if {$code == 1} { error "$event: $err" }
    }
}

proc ::sim::finish {result} {
    variable conn
    dict set result persist $conn(persist)
    dict set result ssl_profile $conn(ssl_profile)
    dict set result events $conn(events)
    dict set result path $conn(path)
    interp delete $conn(interp)
    return $result
}

# One HTTP request on a new connection. Options: -client -cport -vip -vport -host -persist {ADDR PORT}
proc ::sim::http {args} {
    variable conn; variable vs
    set o [dict merge {-client 127.0.0.2 -cport 40000 -vip 127.0.0.10 -vport 443 -host "" -path / -query "" -persist {}} $args]
    new_connection [dict get $o -client] [dict get $o -cport] [dict get $o -vip] [dict get $o -vport]
    set conn(host) [dict get $o -host]
    set conn(path) [dict get $o -path]
    set conn(query) [dict get $o -query]
    if {[catch {
        fire CLIENT_ACCEPTED
        fire HTTP_REQUEST
    } err]} { return [finish [dict create kind error error $err]] }
    if {$conn(respond) ne ""} { return [finish [respond_result]] }
    if {$conn(reject)} { return [finish [dict create kind reject]] }
    return [finish [balance [dict get $o -persist]]]
}

# One TCP connection whose client sends `chunks` (hex strings), e.g. a TLS ClientHello in pieces.
proc ::sim::tcp {args} {
    variable conn
    set o [dict merge {-client 127.0.0.2 -cport 40000 -vip 127.0.0.10 -vport 443 -chunks {} -persist {}} $args]
    new_connection [dict get $o -client] [dict get $o -cport] [dict get $o -vip] [dict get $o -vport]
    if {[catch {
        fire CLIENT_ACCEPTED
        foreach chunk [dict get $o -chunks] {
            if {!$conn(collecting) || $conn(reject)} { break }
            append conn(payload) [binary format H* $chunk]
            set conn(recollect) 0
            set conn(collecting) 0
            fire CLIENT_DATA
            if {!$conn(released) && !$conn(recollect) && !$conn(reject)} {
                error "CLIENT_DATA ended without TCP::release or TCP::collect"
            }
            if {$conn(recollect)} { set conn(collecting) 1 }
        }
    } err]} { return [finish [dict create kind error error $err]] }
    if {$conn(reject)} { return [finish [dict create kind reject]] }
    if {$conn(collecting)} { return [finish [dict create kind stalled]] }
    return [finish [balance [dict get $o -persist]]]
}

proc ::sim::respond_result {} {
    variable conn
    return [dict merge {kind respond} $conn(respond)]
}

# ------------------------------------------------------------------ lbc's model of BIG-IP load balancing

proc ::sim::members {pool} {
    variable pools
    if {![dict exists $pools $pool]} { error "no such pool $pool" }
    return [dict get $pools $pool members]
}

proc ::sim::monitor_up {state} { expr {$state eq "up" || $state eq "unreachable" || $state eq "disabled"} }
proc ::sim::connects {state} { expr {$state ne "down" && $state ne "unreachable"} }

# Members that take new balanced sessions: monitor up, session enabled, in the active priority groups.
proc ::sim::available {pool} {
    variable pools
    set ok {}
    foreach m [members $pool] {
        if {[dict get $m state] in {up unreachable}} { lappend ok $m }
    }
    set min [dict get $pools $pool min_active]
    if {$min < 1} { return $ok }
    # priority groups: the highest group first; add lower groups while fewer than min_active are available
    set groups [lsort -integer -decreasing -unique [lmap m [members $pool] {dict get $m pg}]]
    set active {}
    foreach g $groups {
        foreach m $ok {
            if {[dict get $m pg] == $g} { lappend active $m }
        }
        if {[llength $active] >= $min} { break }
    }
    return $active
}

proc ::sim::balance {persist} {
    variable conn; variable vs; variable rr; variable reselect_limit
    lassign $conn(selected) pool member
    if {$pool eq ""} { set pool [dict get $vs default_pool] }
    if {$pool eq ""} { return [dict create kind reset reason "no pool"] }
    for {set tries 0} {$tries <= $reselect_limit} {incr tries} {
        set chosen {}
        if {$member ne ""} {
            # `pool P member A P`: used whatever the monitor says
            foreach m [members $pool] {
                if {[list [dict get $m address] [dict get $m port]] eq $member} { set chosen $m }
            }
        } else {
            if {[llength $persist]} {
                foreach m [members $pool] {
                    if {[list [dict get $m address] [dict get $m port]] eq $persist && [monitor_up [dict get $m state]]} {
                        set chosen $m
                    }
                }
            }
            if {$chosen eq ""} {
                set ok [available $pool]
                if {[llength $ok]} {
                    set k [expr {[dict exists $rr $pool] ? [dict get $rr $pool] : 0}]
                    set chosen [lindex $ok [expr {$k % [llength $ok]}]]
                    dict set rr $pool [expr {$k + 1}]
                }
            }
        }
        if {$chosen ne "" && [connects [dict get $chosen state]]} {
            set conn(lb_pool) $pool
            set conn(server_data) {}
            fire SERVER_CONNECTED
            binary scan $conn(server_data) H* hex
            return [dict create kind server pool $pool member [list [dict get $chosen address] [dict get $chosen port]] \
                server_data $hex]
        }
        # nothing to select, or the connection failed
        set conn(lb_pool) $pool
        set conn(reselect) {}
        fire LB_FAILED
        if {$conn(respond) ne ""} { return [respond_result] }
        if {$conn(reject)} { return [dict create kind reject] }
        if {$conn(reselect) eq ""} { return [dict create kind reset reason "LB_FAILED without an answer" pool $pool] }
        set pool $conn(reselect)
        set member ""
        set persist {}
    }
    return [dict create kind reset reason "too many reselects"]
}

# ------------------------------------------------------------------ iRule command stubs

namespace eval ::sim::cmd {}

proc ::sim::cmd::when {event args} {
    upvar #0 ::sim::conn conn
    if {[llength $args] != 1} { error "when $event: lbc emits `when EVENT {body}` only" }
    lappend conn(handlers) [list $event [lindex $args 0]]
}

proc ::sim::cmd::HTTP_host {} {
    upvar #0 ::sim::conn conn
    return $conn(host)
}

# HTTP::path: the request's path (no query); with an argument, the path sent to the server (the query stays)
proc ::sim::cmd::HTTP_path {args} {
    upvar #0 ::sim::conn conn
    if {[llength $args] > 1} { error "HTTP::path: at most one argument" }
    if {[llength $args] == 1} {
        set p [lindex $args 0]
        if {[string index $p 0] ne "/"} { error "HTTP::path: '$p' does not start with /" }
        set conn(path) $p
    }
    return $conn(path)
}

# HTTP::uri: the path and, when the request has one, "?" and the query (read only here)
proc ::sim::cmd::HTTP_uri {} {
    upvar #0 ::sim::conn conn
    if {$conn(query) eq ""} { return $conn(path) }
    return "$conn(path)?$conn(query)"
}

proc ::sim::cmd::HTTP_respond {status args} {
    upvar #0 ::sim::conn conn
    if {$conn(respond) ne ""} { error "HTTP::respond: a response was already sent" }
    if {![string is integer -strict $status]} { error "HTTP::respond: bad status $status" }
    set content ""
    set headers {}
    set noserver 0
    for {set k 0} {$k < [llength $args]} {incr k} {
        set a [lindex $args $k]
        if {$a eq "content"} {
            incr k
            set content [lindex $args $k]
        } elseif {$a eq "noserver"} {
            set noserver 1
        } else {
            if {$k + 1 >= [llength $args]} { error "HTTP::respond: header $a has no value" }
            lappend headers $a [lindex $args [incr k]]
        }
    }
    set conn(respond) [dict create status $status content $content headers $headers noserver $noserver]
}

proc ::sim::cmd::pool {name args} {
    upvar #0 ::sim::conn conn
    ::sim::members $name   ;# errors on an unknown pool, as BIG-IP refuses such a rule
    if {[llength $args] == 0} {
        set conn(selected) [list $name ""]
    } elseif {[llength $args] == 3 && [lindex $args 0] eq "member"} {
        set member [lrange $args 1 2]
        set found 0
        foreach m [::sim::members $name] {
            if {[list [dict get $m address] [dict get $m port]] eq $member} { set found 1 }
        }
        if {!$found} { error "pool $name has no member $member" }
        set conn(selected) [list $name $member]
    } else {
        error "pool: expected `pool NAME` or `pool NAME member ADDR PORT`"
    }
}

proc ::sim::cmd::active_members {name} {
    set n 0
    foreach m [::sim::members $name] {
        if {[dict get $m state] in {up unreachable}} { incr n }
    }
    return $n
}

proc ::sim::cmd::LB_status {args} {
    if {[llength $args] != 5 || [lindex $args 0] ne "pool" || [lindex $args 2] ne "member"} {
        error "LB::status: lbc uses `LB::status pool P member ADDR PORT`"
    }
    lassign $args - name - addr port
    foreach m [::sim::members $name] {
        if {[dict get $m address] eq $addr && [dict get $m port] == $port} {
            switch -- [dict get $m state] {
                up - unreachable { return up }
                disabled { return session_disabled }
                default { return down }
            }
        }
    }
    error "LB::status: pool $name has no member $addr $port"
}

proc ::sim::cmd::LB_server {what} {
    upvar #0 ::sim::conn conn
    if {$what ne "pool"} { error "LB::server $what: not simulated" }
    return $conn(lb_pool)
}

proc ::sim::cmd::LB_reselect {what name} {
    upvar #0 ::sim::conn conn
    if {$what ne "pool"} { error "LB::reselect $what: not simulated" }
    ::sim::members $name
    set conn(reselect) $name
}

proc ::sim::cmd::persist {args} {
    upvar #0 ::sim::conn conn
    set ok [expr {[lindex $args 0] eq "none" && [llength $args] == 1
                  || [lindex $args 0] eq "source_addr" && [llength $args] == 2 && [string is integer [lindex $args 1]]
                  || [lrange $args 0 1] eq {cookie insert} && [llength $args] == 4 && [string is integer [lindex $args 3]]}]
    if {!$ok} { error "persist $args: not a form lbc emits" }
    lappend conn(persist) [join $args " "]
}

proc ::sim::cmd::SSL_profile {name} {
    upvar #0 ::sim::conn conn
    if {[lsearch -exact $::sim::profiles $name] < 0} { error "SSL::profile: no such profile $name" }
    set conn(ssl_profile) $name
}

proc ::sim::cmd::getfield {str sep field} {
    # F5's getfield splits on a string (split splits on characters); fields count from 1
    if {$sep eq ""} { error "getfield: empty separator" }
    set parts {}
    while {1} {
        set i [string first $sep $str]
        if {$i < 0} { lappend parts $str; break }
        lappend parts [string range $str 0 [expr {$i - 1}]]
        set str [string range $str [expr {$i + [string length $sep]}] end]
    }
    return [lindex $parts [expr {$field - 1}]]
}

proc ::sim::cmd::reject {} {
    upvar #0 ::sim::conn conn
    set conn(reject) 1
}

proc ::sim::cmd::log {args} {}

# `class match ADDR equals DATAGROUP` on an address data group (IPv4 records and clients; the
# longest-prefix detail does not matter for `match`, only whether any record contains ADDR).
proc ::sim::cmd::class {args} {
    if {[llength $args] != 4 || [lindex $args 0] ne "match" || [lindex $args 2] ne "equals"} {
        error "class: lbc emits `class match ADDR equals DATAGROUP` only, got: $args"
    }
    set addr [lindex $args 1]
    set name [lindex $args 3]
    if {![dict exists $::sim::datagroups $name]} { error "class: no data group $name" }
    set a [::sim::ipv4 $addr]
    foreach net [dict get $::sim::datagroups $name] {
        lassign [split $net /] base len
        if {[string first : $base] >= 0} { continue }    ;# IPv6 records never match an IPv4 client
        set mask [expr {$len == 0 ? 0 : (0xFFFFFFFF << (32 - $len)) & 0xFFFFFFFF}]
        if {($a & $mask) == ([::sim::ipv4 $base] & $mask)} { return 1 }
    }
    return 0
}

proc ::sim::ipv4 {addr} {
    set parts [split $addr .]
    if {[llength $parts] != 4} { error "the harness simulates IPv4 clients only: $addr" }
    set n 0
    foreach p $parts { set n [expr {($n << 8) | $p}] }
    return $n
}

# `table incr -notouch -subtable S KEY` and `table lifetime -subtable S KEY SECONDS`, the forms lbc
# writes. Time does not pass within a run (one tclsh process): lifetimes are recorded, never reached.
proc ::sim::cmd::table {args} {
    set verb [lindex $args 0]
    if {$verb eq "incr" && [llength $args] == 5 && [lindex $args 1] eq "-notouch" && [lindex $args 2] eq "-subtable"} {
        set k [list [lindex $args 3] [lindex $args 4]]
        if {![dict exists $::sim::tables $k]} { dict set ::sim::tables $k [dict create value 0 lifetime ""] }
        set v [expr {[dict get $::sim::tables $k value] + 1}]
        dict set ::sim::tables $k value $v
        return $v
    }
    if {$verb eq "lifetime" && [llength $args] == 5 && [lindex $args 1] eq "-subtable"} {
        set k [list [lindex $args 2] [lindex $args 3]]
        if {![string is integer -strict [lindex $args 4]] || [lindex $args 4] < 1} { error "table lifetime: bad seconds" }
        if {[dict exists $::sim::tables $k]} { dict set ::sim::tables $k lifetime [lindex $args 4] }
        return [lindex $args 4]
    }
    error "table: lbc emits `table incr -notouch -subtable S K` and `table lifetime -subtable S K N` only, got: $args"
}

# `event disable all`: no further iRule event runs on this connection, in any of its iRules.
proc ::sim::cmd::event {args} {
    upvar #0 ::sim::conn conn
    if {$args ne "disable all"} { error "event: lbc emits `event disable all` only" }
    set conn(disabled) 1
}

proc ::sim::cmd::TCP_collect {args} {
    upvar #0 ::sim::conn conn
    set conn(collecting) 1
    set conn(recollect) 1
}

proc ::sim::cmd::TCP_payload {args} {
    upvar #0 ::sim::conn conn
    if {$args eq "length"} { return [string length $conn(payload)] }
    if {[llength $args]} { error "TCP::payload $args: not simulated" }
    return $conn(payload)
}

proc ::sim::cmd::TCP_release {} {
    upvar #0 ::sim::conn conn
    set conn(released) 1
    set conn(collecting) 0
}

proc ::sim::cmd::TCP_respond {data} {
    upvar #0 ::sim::conn conn
    if {[lindex $conn(events) end] ne "SERVER_CONNECTED"} { error "TCP::respond outside SERVER_CONNECTED" }
    append conn(server_data) $data
}

proc ::sim::cmd::TCP_client_port {} { upvar #0 ::sim::conn conn; return $conn(cport) }
proc ::sim::cmd::TCP_local_port {} { upvar #0 ::sim::conn conn; return $conn(vport) }
proc ::sim::cmd::IP_client_addr {} { upvar #0 ::sim::conn conn; return $conn(client) }
proc ::sim::cmd::IP_local_addr {} { upvar #0 ::sim::conn conn; return $conn(vip) }

# ------------------------------------------------------------------ output

proc ::sim::json_str {s} {
    set out "\""
    foreach c [split $s ""] {
        scan $c %c code
        if {$c eq "\"" || $c eq "\\"} {
            append out "\\$c"
        } elseif {$code < 0x20 || $code > 0x7e} {
            append out [format "\\u%04x" $code]
        } else {
            append out $c
        }
    }
    return "$out\""
}

# A result dict as JSON: lists stay lists, `respond`'s headers a list, everything else strings.
proc ::sim::json {result} {
    set parts {}
    dict for {k v} $result {
        if {$k in {member persist events headers}} {
            set items [lmap x $v {json_str $x}]
            lappend parts "[json_str $k]: \[[join $items {, }]\]"
        } else {
            lappend parts "[json_str $k]: [json_str $v]"
        }
    }
    return "\{[join $parts {, }]\}"
}

proc ::sim::emit {result} {
    puts "RESULT [json $result]"
}
