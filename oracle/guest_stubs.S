/* Guest code pieces the reference engine copies into its stub pages and chains
 * together (reference.c, build_stubs). Each piece is data between NAME and NAME_end;
 * none is executed on the host. Registers: rax/eax = CR4 or PKRU, rbx/ebx = CR3 (also
 * reloaded by every check, to empty the TLB),
 * rcx/ecx = CR0, rdi/edi = the gva under test, dl = the byte stored, and for the
 * switch to CPL3 r8/ebp = user RFLAGS, r9/eax = user entry, rsi/esi = user stack. */

#define PIECE(name) .globl name, name##_end; .type name, @object; name:
#define PIECE_END(name) name##_end: .size name, . - name

	.intel_syntax noprefix
	.section .rodata.sf_guest, "a"

	.code64
PIECE(sf_guest64_set_control)
	mov cr4, rax
	mov cr3, rbx
	mov cr0, rcx
PIECE_END(sf_guest64_set_control)

PIECE(sf_guest64_write_pkru)
	xor ecx, ecx
	xor edx, edx
	wrpkru
PIECE_END(sf_guest64_write_pkru)

PIECE(sf_guest64_flush)
	mov cr3, rbx
PIECE_END(sf_guest64_flush)

PIECE(sf_guest64_read)
	mov al, byte ptr [rdi]
PIECE_END(sf_guest64_read)

PIECE(sf_guest64_write)
	mov byte ptr [rdi], dl
PIECE_END(sf_guest64_write)

PIECE(sf_guest64_fetch)
	jmp rdi
PIECE_END(sf_guest64_fetch)

/* iretq frame: SS, RSP, RFLAGS, CS, RIP (user data 0x23, user code64 0x2b). */
PIECE(sf_guest64_enter_user)
	push 0x23
	push rsi
	push r8
	push 0x2b
	push r9
	iretq
PIECE_END(sf_guest64_enter_user)

PIECE(sf_guest64_stop)
	int3
PIECE_END(sf_guest64_stop)

	.code32
PIECE(sf_guest32_set_control)
	mov cr4, eax
	mov cr3, ebx
	mov cr0, ecx
PIECE_END(sf_guest32_set_control)

PIECE(sf_guest32_flush)
	mov cr3, ebx
PIECE_END(sf_guest32_flush)

PIECE(sf_guest32_read)
	mov al, byte ptr [edi]
PIECE_END(sf_guest32_read)

PIECE(sf_guest32_write)
	mov byte ptr [edi], dl
PIECE_END(sf_guest32_write)

PIECE(sf_guest32_fetch)
	jmp edi
PIECE_END(sf_guest32_fetch)

/* iretd frame: SS, ESP, EFLAGS, CS, EIP (user data 0x23, user code32 0x1b). */
PIECE(sf_guest32_enter_user)
	push 0x23
	push esi
	push ebp
	push 0x1b
	push eax
	iretd
PIECE_END(sf_guest32_enter_user)

PIECE(sf_guest32_stop)
	int3
PIECE_END(sf_guest32_stop)

	.section .note.GNU-stack, "", @progbits
