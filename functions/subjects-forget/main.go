package main

import "github.com/skyflow-oss/skyflow/shared/host"

func main() { host.Main(New()) }
