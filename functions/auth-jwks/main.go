package main

import "github.com/skyflow-oss/skyflow/runtime/host"

func main() { host.Main(New()) }
