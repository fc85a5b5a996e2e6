#!/usr/bin/env python3
"""tests/emu/cu2cpp.py IN.cu OUT.cpp — a CUDA kernel file as C++ for the CPU emulation
(tests/emu/cuda_emu.h). Two rewrites, nothing else:

  kernel<...><<<grid, block, smem, stream>>>(args)  ->  emu::launch_k(emu::cfg(grid, block,
                                             smem, stream), "kernel<...>", kernel<...>, args)
  extern __shared__ [__align__(n)] T name[];        ->  T *name = (T *)emu::dyn_smem();

Everything else (the CUDA keywords, the builtins) is mapped by cuda_emu.h. A #line
directive keeps compiler messages pointing into the .cu file.
"""
import re
import sys


def kernel_start(text, end):
    """Index where the kernel expression ending at `end` (exclusive) begins: an identifier
    optionally followed by balanced <...> template arguments or one [...] subscript."""
    i = end
    pairs = {'>': '<', ']': '['}
    if i > 0 and text[i - 1] in pairs:
        close = text[i - 1]
        depth = 0
        while i > 0:
            i -= 1
            c = text[i]
            if c == close:
                depth += 1
            elif c == pairs[close]:
                depth -= 1
                if depth == 0:
                    break
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in '_:'):
        i -= 1
    return i


def rewrite_launches(text):
    out, pos = [], 0
    while True:
        k = text.find('<<<', pos)
        if k < 0:
            out.append(text[pos:])
            return ''.join(out)
        start = kernel_start(text, k)
        if start == k:
            sys.exit(f"cu2cpp: no kernel name before <<< at offset {k}")
        close = text.find('>>>', k)
        if close < 0:
            sys.exit(f"cu2cpp: <<< without >>> at offset {k}")
        cfg = text[k + 3:close]
        j = close + 3
        while j < len(text) and text[j] in ' \t\\\n':
            j += 1
        if j >= len(text) or text[j] != '(':
            sys.exit(f"cu2cpp: no argument list after >>> at offset {close}")
        rest = j + 1
        while rest < len(text) and text[rest] in ' \t':
            rest += 1
        sep = '' if rest < len(text) and text[rest] == ')' else ', '
        out.append(text[pos:start])
        name = ' '.join(text[start:k].split())
        out.append(f'emu::launch_k(emu::cfg({cfg}), "{name}", {text[start:k]}{sep}')
        pos = j + 1


DYN = re.compile(r'extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([\w ]+?)\s+(\w+)\s*\[\s*\]\s*;')


def main():
    src, dst = sys.argv[1], sys.argv[2]
    text = open(src, encoding='utf-8').read()
    text = DYN.sub(lambda m: f"{m.group(1)} *{m.group(2)} = ({m.group(1)} *)emu::dyn_smem();", text)
    text = rewrite_launches(text)
    with open(dst, 'w', encoding='utf-8') as f:
        f.write(f'#line 1 "{src}"\n')
        f.write(text)


if __name__ == '__main__':
    main()
