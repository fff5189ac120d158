import sys,re,collections
marks=[l.split() for l in open(sys.argv[1])]
c=collections.Counter(); stm=collections.defaultdict(list)
for l in open(sys.argv[2]):
    m=re.match(r'(\S+Z) knex:query (.*)',l)
    if not m: continue
    t=m.group(1); sec='pre'
    for mt,name in marks:
        if t>=mt: sec=name
    c[sec]+=1; stm[sec].append(m.group(2)[:150])
for name in [n for _,n in marks]:
    print(name, c[name])
if len(sys.argv)>3:
    for x in stm[sys.argv[3]]: print('  ',x)
