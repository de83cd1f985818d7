#!/usr/bin/env python3
"""A lane log of run-gpu.sh -> JSON lines: each BENCH/CHECK record, with the command and nvidia-smi peak of the
PEAK line that follows it. Records of commands run without `peak` (fused-check, gen_check.py, profiles,
decode-probe, kprof's summaries, and the runs traced by CUPTI: run-gpu.sh follows those with a peak-less
`PEAK  MiB rc=0 :: traced: CMD` line, and lanes-gpu.sh's kprof section is marked too; their records get
"traced": true) get no peak.   python3 tools/bench/log-to-jsonl.py LOG META_JSON > OUT.jsonl"""
import json, re, sys

UNPEAKED = lambda r: r['bench'] in ('fused-check', 'decode-probe', 'kprof') or 'profile' in r

def main(log, meta):
    out = [json.loads(meta)]
    pending = []
    section = None
    for line in open(log).read().splitlines():
        m = re.match(r'SECTION (\S+) (start|end)', line)
        if m:
            section = m.group(1) if m.group(2) == 'start' else None
        if line.startswith(('BENCH ', 'CHECK ')):
            r = json.loads(line.split(' ', 1)[1])
            if line.startswith('CHECK '):
                r = {'bench': 'gen-check' if r.get('check') == 'gen-teacher-forced' else 'fused-check', **r}
            if r.get('bench') == 'meta':
                continue
            if section == 'kprof' or r['bench'] == 'kprof':  # no `peak` there: the runs are under the CUPTI recorder
                out.append({**r, 'traced': True})
                continue
            (out if UNPEAKED(r) or r['bench'] == 'gen-check' else pending).append(r)
        elif line.startswith('PEAK '):
            m = re.match(r'PEAK (\d*) MiB rc=(\d+) :: (.*)', line)
            traced = m.group(3).startswith('traced: ')
            for r in pending:
                r['cmd'] = m.group(3)[len('traced: '):] if traced else m.group(3)
                r['peak_mib'] = int(m.group(1)) if m.group(1) else None
                if traced:
                    r['traced'] = True
                if m.group(2) != '0':
                    r['rc'] = int(m.group(2))
            out += pending
            pending = []
    out += pending
    sys.stdout.write(''.join(json.dumps(r) + '\n' for r in out))

if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
