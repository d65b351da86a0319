when HTTP_REQUEST {
    HTTP::header remove X-Debug
    HTTP::header remove X-Site
    HTTP::header insert X-Site "100% \u0024host 'q' \u0022d\u0022 \u005c \u007bx\u007d \u005by\u005d\u003b \u0023z"
}

when HTTP_RESPONSE {
    HTTP::header remove X-Powered-By
    HTTP::header remove X-Frame-Options
    HTTP::header insert X-Frame-Options DENY
    HTTP::header insert Cache-Control no-store
}
