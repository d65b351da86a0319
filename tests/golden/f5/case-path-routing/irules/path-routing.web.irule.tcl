when HTTP_REQUEST {
    # HTTP::host keeps a port (host:8443): compare the name only
    set lbc_host [string tolower [getfield [HTTP::host] ":" 1]]
    set lbc_wild "*.[string range $lbc_host [expr {[string first "." $lbc_host] + 1}] end]"
    switch -- $lbc_host {
        www.example.com {
            set lbc_path [HTTP::path]
            if {[string equal $lbc_path /status]} {
                persist none
                if {[LB::status pool /Common/path-routing.web.default.pool member 10.0.0.11 8080] eq "down"} {
                    HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
                } else {
                    pool /Common/path-routing.web.default.pool member 10.0.0.11 8080
                }
            } elseif {[string first /api/v2/ $lbc_path] == 0} {
                persist none
                if {[active_members /Common/path-routing.web.default.pool] < 1} {
                    HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
                } else {
                    pool /Common/path-routing.web.default.pool
                }
            } elseif {[string first /api/ $lbc_path] == 0} {
                HTTP::path [string range $lbc_path 4 end]
                persist cookie insert LBSRV 0
                pool /Common/path-routing.api.default.pool
            } else {
                persist none
                if {[active_members /Common/path-routing.web.default.pool] < 1} {
                    HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
                } else {
                    pool /Common/path-routing.web.default.pool
                }
            }
        }
        app.example.com {
            set lbc_path [HTTP::path]
            if {[string first /app/ $lbc_path] == 0} {
                persist cookie insert LBSRV 0
                pool /Common/path-routing.api.default.pool
            } else {
                HTTP::respond 404 noserver Connection close
            }
        }
        plain.example.com {
            persist none
            if {[active_members /Common/path-routing.web.default.pool] < 1} {
                HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
            } else {
                pool /Common/path-routing.web.default.pool
            }
        }
        default {
            switch -- $lbc_wild {
                *.example.net {
                    set lbc_path [HTTP::path]
                    if {[string equal $lbc_path /status]} {
                        persist none
                        if {[LB::status pool /Common/path-routing.web.default.pool member 10.0.0.11 8080] eq "down"} {
                            HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
                        } else {
                            pool /Common/path-routing.web.default.pool member 10.0.0.11 8080
                        }
                    } elseif {[string first /api/v2/ $lbc_path] == 0} {
                        persist none
                        if {[active_members /Common/path-routing.web.default.pool] < 1} {
                            HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
                        } else {
                            pool /Common/path-routing.web.default.pool
                        }
                    } elseif {[string first /api/ $lbc_path] == 0} {
                        HTTP::path [string range $lbc_path 4 end]
                        persist cookie insert LBSRV 0
                        pool /Common/path-routing.api.default.pool
                    } else {
                        persist none
                        if {[active_members /Common/path-routing.web.default.pool] < 1} {
                            HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
                        } else {
                            pool /Common/path-routing.web.default.pool
                        }
                    }
                }
                default {
                    set lbc_path [HTTP::path]
                    if {[string first /.well-known/acme-challenge/ $lbc_path] == 0} {
                        persist none
                        if {[LB::status pool /Common/path-routing.web.default.pool member 10.0.0.11 8080] eq "down"} {
                            HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
                        } else {
                            pool /Common/path-routing.web.default.pool member 10.0.0.11 8080
                        }
                    } else {
                        persist cookie insert LBSRV 0
                        pool /Common/path-routing.api.default.pool
                    }
                }
            }
        }
    }
}

when LB_FAILED {
    # no member could be selected or connected: the service's fallback answers
    switch -- [LB::server pool] {
        /Common/path-routing.web.default.pool {
            HTTP::respond 503 content busy noserver Content-Type text/plain Connection close
        }
    }
}
