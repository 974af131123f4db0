// Package signin serves the browser sign-in endpoints of a data plane: the
// login page and form (GET/POST /login) and logout (POST /logout). It keeps no
// state: passwords are checked and sessions opened, looked up and ended by the
// control plane (SignInService), and the session lives in an opaque cookie
// whose value only the control plane can resolve.
//
// It also translates the browser's credentials into gRPC metadata for the REST
// gateway (Metadata): the session cookie and the X-CSRF-Token header reach the
// control plane's interceptor, which decides what the session may do. It never
// logs passwords, session tokens or CSRF tokens.
package signin
