// Package structured checks answers against the structured output the client
// asked for: json_object answers must be a JSON object, json_schema answers
// must validate against the client's JSON Schema (any draft
// santhosh-tekuri/jsonschema supports; 2020-12 when $schema is absent).
//
// Engines constrain decoding to the format, but a model can still run out of
// tokens mid-object, put everything in its reasoning, or ignore a format the
// engine does not enforce; the relay checks every non-streamed answer and
// reports a broken one as a canonical KindUnprocessable error (HTTP 422 in
// every dialect) instead of passing it on as success. Streams cannot be
// checked before they are sent.
//
// Schemas are compiled with every external reference refused: a client's
// $ref must never make the gateway read a file or fetch a URL.
package structured
