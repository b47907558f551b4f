package migrate

// UpFS is Up with migrations read from the directory "sql" of fsys.
var UpFS = up
