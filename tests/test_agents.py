"Stage 7 (agents): the stage's contract, `codellm agent` on bad input and on a run, and the evaluation's result row."
import json
from pathlib import Path
import pytest
import torch
from conftest import codellm, one_line_error
from codellm.core import Paths
from codellm.tokenizer import BPETokenizer
from codellm.chat_format import CHAT_TEMPLATE
from codellm.agents.loop import AGENT_TEMPLATE, AgentLimits, ScriptedPolicy
from codellm.stages.agents import Agent, evaluate_agent, open_workspace, failure_kind, run_objective, draw_objectives, expert_trajectory
from codellm.core import CodeLLMError

TOK = BPETokenizer([])                     # bytes only: enough for an untrained model

def _random_checkpoint(path, template=AGENT_TEMPLATE):
    from codellm.model import GPT, tiny_test_config
    from codellm.checkpoint import save_checkpoint
    torch.manual_seed(0)
    return save_checkpoint(path, GPT(tiny_test_config(vocab_size=TOK.vocab_size, block_size=256)), TOK, 'agent', template)

def test_stage_declares_the_contract():
    st = Agent()
    assert (st.name, st.order, st.init_from, st.template, st.align_to_docs) == ('agent', 7, 'rag', AGENT_TEMPLATE, True)
    assert [f for f in st.PrepareOptions.__dataclass_fields__] == ['n_train', 'n_val', 'fail_share', 'workers', 'checkpoint']
    assert 'max_steps' in st.EvaluateOptions.__dataclass_fields__ and st.train_defaults['steps_per_epoch'] == 300

def test_bad_input_is_one_line(tmp_path):
    ck = _random_checkpoint(tmp_path / 'agent_model_best.pth')
    chat = _random_checkpoint(tmp_path / 'chat.pth', CHAT_TEMPLATE)
    full = tmp_path / 'full'; full.mkdir(); (full / 'notes.txt').write_text('mine')
    one_line_error(codellm('agent', '--objective', '  ', '--checkpoint', ck), 'OBJECTIVE IS EMPTY')
    one_line_error(codellm('agent', '--objective', 'x', '--models-dir', tmp_path / 'none'), 'CHECKPOINT NOT FOUND', 'codellm train --stage agent')
    one_line_error(codellm('agent', '--objective', 'x', '--checkpoint', ck, '--workspace', full), 'NOT EMPTY', '--resume-workspace')
    one_line_error(codellm('agent', '--objective', 'x', '--checkpoint', ck, '--workspace', '/proc/codellm-ws'), 'CANNOT WRITE TO WORKSPACE')
    one_line_error(codellm('agent', '--objective', 'x', '--checkpoint', chat), 'NOT TRAINED AS AN AGENT', 'codellm train --stage agent')
    one_line_error(codellm('agent', '--objective', 'x', '--checkpoint', ck, '--index', tmp_path / 'noindex', '--workspace', tmp_path / 'w'), 'NO CODE INDEX')
    assert sorted(p.name for p in full.iterdir()) == ['notes.txt']             # nothing written where it was refused

def test_a_run_ends_within_its_limits_and_saves_the_transcript(tmp_path):
    ck = _random_checkpoint(tmp_path / 'agent_model_best.pth')
    ws = tmp_path / 'ws'
    r = codellm('agent', '--objective', 'Write f(x) in f.py, and test it.', '--checkpoint', ck, '--workspace', ws, '--max-steps', 3, '--json')
    assert r.returncode == 1, r.stderr                                         # an untrained model does not meet it
    tr = json.loads(r.stdout)
    assert tr['steps_used'] <= 3 and tr['outcome']['success'] is False and tr['outcome']['reason'] in ('max_steps', 'repeated_action')
    assert json.loads((ws / 'transcript.json').read_text())['steps_used'] == tr['steps_used']
    r = codellm('agent', '--objective', 'again', '--checkpoint', ck, '--workspace', ws, '--max-steps', 1, '--resume-workspace')
    assert r.returncode == 1 and 'objective not met' in r.stderr

def test_open_workspace(tmp_path):
    (tmp_path / 'f').write_text('x')
    with pytest.raises(CodeLLMError, match='IS A FILE'): open_workspace(tmp_path / 'f')
    assert open_workspace(tmp_path / 'new' / 'ws').root.is_dir()

def test_expert_runs_pass_and_failures_are_named():
    o = draw_objectives(1, 'train', seed=3)[0]
    import random
    t = expert_trajectory(o, random.Random(0), fail_share=1.0)
    assert t is not None and t['failures'] == 1 and t['steps'][-1]['call']['name'] == 'finish'
    tr = run_objective(o, ScriptedPolicy('p', [{'name': 'list_files', 'arguments': {}}] * 2), AgentLimits(max_steps=5))
    assert failure_kind(tr) == 'loop'

def test_evaluate_returns_the_result_row(tmp_path):
    paths = Paths.of(data_dir=tmp_path / 'data', models_dir=tmp_path)
    ck = _random_checkpoint(paths.best('agent'))
    row = evaluate_agent(ck, paths, n=1, max_steps=2, own_words=False, before=False, guide=False)
    assert (row['stage'], row['better'], row['before']) == ('agent', 'higher', None)
    assert row['ours'] == 0.0 and row['families']['fix']['n'] == 1 and row['max_steps_used'] <= 2
    assert set(row['baseline_by_family']) == {'write', 'fix', 'two_step'}
