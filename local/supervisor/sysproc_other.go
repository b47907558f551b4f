//go:build !unix

package supervisor

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
