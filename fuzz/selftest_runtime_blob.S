/* The selftest's runtime (selftest_runtime.c.in) as data, for export_selftest.c. */
	.section .rodata.selftest_runtime, "a"
	.globl selftest_runtime, selftest_runtime_end
selftest_runtime:
	.incbin SELFTEST_RUNTIME_PATH
selftest_runtime_end:
	.byte 0

	.section .note.GNU-stack, "", @progbits
