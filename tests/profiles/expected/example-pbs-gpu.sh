#!/bin/bash
#PBS -N fcs.hub.alice._.abc
#PBS -q gpu
#PBS -l walltime=02:00:00
#PBS -l select=2:ncpus=64:mpiprocs=4:mem=250gb:ngpus=4
#PBS -l place=scatter:excl
#PBS -j oe
#PBS -o /home/alice/fcs.hub.alice._.log
#PBS -A p100

cd /home/alice || exit 1
module load python/3.12
jupyterhub-singleuser
