# lbc: listener alt answers plain HTTP with a redirect (301) to
# https://<the Host's name>:8443 + the same path and query.
# Listed after the access list and rate limit, before the header and routing iRules.
when HTTP_REQUEST {
    HTTP::respond 301 Location "https://[getfield [HTTP::host] ":" 1]:8443[HTTP::uri]" Connection close
    # no later HTTP_REQUEST handler (headers, routing) runs for this connection
    event disable all
}
