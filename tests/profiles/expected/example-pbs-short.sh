#!/bin/bash
#PBS -N fcs.hub.alice._.abc
#PBS -q short
#PBS -l walltime=01:00:00
#PBS -l select=1:ncpus=16:mpiprocs=1:mem=16gb
#PBS -l place=free
#PBS -j oe
#PBS -o /home/alice/fcs.hub.alice._.log

cd /home/alice || exit 1
module load python/3.12
jupyterhub-singleuser
