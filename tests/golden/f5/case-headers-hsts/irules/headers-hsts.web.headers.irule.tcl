when HTTP_RESPONSE {
    HTTP::header remove X-Powered-By
}
