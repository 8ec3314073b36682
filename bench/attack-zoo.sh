#!/bin/sh
# Infected ACC/ASR of every registered attack on 20k Fashion-MNIST (cnn-small, 8 epochs, target 0, each attack's
# default rate from config/attacks/<name>.json), against a model trained on the clean data.
#   npm run build && nice -n 19 sh bench/attack-zoo.sh            # all attacks
#   ATTACKS="badnets sig" nice -n 19 sh bench/attack-zoo.sh       # some
# Results: $OUT/results.csv (one line per attack as it finishes), $OUT/<attack>/{poisoned,infected,eval.json}.
# An attack whose config says "training": "per-batch" (wanet, bpp) is trained with `pbe train --attack` on the
# clean data, every batch poisoned on the way (TRAINING=data forces training on the poisoned shards).
set -eu
OUT=${OUT:-bench/out/attack-zoo}
DATA=$OUT/fashion-mnist-20000
pbe="node dist/src/cli/main.js"
mkdir -p "$OUT"
[ -f "$DATA/complete" ] || $pbe data fashion-mnist --out "$DATA" --train-limit 20000 --test-limit 10000 --quiet
[ -f "$OUT/results.csv" ] || echo "attack,mode,rate,poisoned,acc,asr,minutes,training" > "$OUT/results.csv"
if [ ! -f "$OUT/clean/eval.json" ]; then
  start=$(date +%s)
  $pbe train --data "$DATA/train-*.tar" --out "$OUT/clean/model" --epochs 8 --log-format json --quiet
  $pbe eval --model "$OUT/clean/model" --data "$DATA/test-*.tar" --json --quiet > "$OUT/clean/eval.json"
  node -e "const r=require(require('path').resolve('$OUT/clean/eval.json'));console.log(['clean','-','0','0',r.acc.toFixed(4),'',((Date.now()/1000-$start)/60).toFixed(1),'data'].join(','))" >> "$OUT/results.csv"
fi
for attack in ${ATTACKS:-badnets blend trojan sig wanet lc bpp ftrojan}; do
  start=$(date +%s)
  extra=""
  [ "$attack" = lc ] && extra="--attack-option model=$OUT/clean/model"
  rm -rf "$OUT/$attack"
  $pbe poison --data "$DATA/train-*.tar" --out "$OUT/$attack/poisoned" --attack "$attack" $extra ${POISON_ARGS:-} --quiet
  training=${TRAINING:-$(node -p "require('./config/attacks/$attack.json').training || 'data'")}
  if [ "$training" = per-batch ]; then
    $pbe train --data "$DATA/train-*.tar" --out "$OUT/$attack/infected" --epochs 8 --attack "$attack" $extra ${POISON_ARGS:-} --quiet
  else
    $pbe train --data "$OUT/$attack/poisoned/train-*.tar" --out "$OUT/$attack/infected" --epochs 8 --quiet
  fi
  $pbe eval --model "$OUT/$attack/infected" --data "$DATA/test-*.tar" --attack "$attack" ${EVAL_ARGS:-} --json --quiet > "$OUT/$attack/eval.json"
  node -e "
    const r = require(require('path').resolve('$OUT/$attack/eval.json')), p = require(require('path').resolve('$OUT/$attack/poisoned/poison.json'));
    const t = '$training' === 'per-batch' ? require(require('path').resolve('$OUT/$attack/infected/train.json')) : undefined;
    const poisoned = t ? Math.round(t.poisoning.counts.triggered / t.epochs) : p.poisoned; // per-batch: triggered samples per epoch
    console.log(['$attack', p.mode, t ? t.poisoning.rate : p.rate, poisoned, r.acc.toFixed(4), r.asr.toFixed(4), ((Date.now() / 1000 - $start) / 60).toFixed(1), '$training'].join(','));
  " >> "$OUT/results.csv"
done
