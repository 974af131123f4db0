// Package modeljob pulls models onto Ollama backends and deletes them from
// there, as jobs kept in the database. The Service (ModelJobService) queues a
// job and lets anyone with read access follow it; the Runner, started on the
// leading control plane only, runs the queued jobs: a pull streams Ollama's
// POST /api/pull, writes its progress at most once per ProgressInterval and
// retries a failed attempt with doubling backoff (Ollama resumes the partial
// blobs); a delete calls DELETE /api/delete. After a job succeeds the Runner
// rediscovers the models of the backend and of every other Ollama backend on
// its node (they share the model directory).
//
// A job the previous leader left running is resumed by the next one: at start
// the Runner puts every running job back in the queue, and the attempt it
// interrupted does not count against the job's attempts. It must not touch
// backends other than through Ollama's API and the registry's refresh.
package modeljob
